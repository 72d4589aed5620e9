"""Benchmark only: points Rasa's built-in facebook channel (fbmessenger) at the loopback
fake Graph API, so it is measured doing the same work as ours, without the internet."""

import os

_url = os.environ.get("BENCH_FACEBOOK_GRAPH_URL")
if _url:
    import fbmessenger

    _original_init = fbmessenger.MessengerClient.__init__

    def _init(self, *args, **kwargs):
        _original_init(self, *args, **kwargs)
        self.graph_url = _url

    fbmessenger.MessengerClient.__init__ = _init
