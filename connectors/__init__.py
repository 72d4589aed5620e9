"""Instagram adapters: the input channel and the Graph API client that sends replies."""
