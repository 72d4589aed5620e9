# Sourced by run-shell, serve and simulate: `start_console` starts the staff console in
# the background (log: var/log/console.log), sets console_pid, waits until it answers and
# prints its address, with a one-time sign-in link for the first admin when there is no
# staff account yet. A console that can't start is reported; the rest carries on.
start_console() {
    local bin=${VENV:-.venv}/bin
    eval "$("$bin/python" -m clinic settings --export CONSOLE_URL)"
    "$bin/python" -m clinic console >var/log/console.log 2>&1 &
    console_pid=$!
    if ! scripts/wait-for-url "$CONSOLE_URL/sign-in" 60; then
        echo "The staff console did not start (port taken?); see var/log/console.log" >&2
        return 0
    fi
    echo "Staff console: $CONSOLE_URL/"
    local first
    # A placeholder address: sign in with the link, then add the clinic's real people.
    first=$("$bin/python" -m clinic staff add admin@clinic.example --role admin --if-none)
    if [ -n "$first" ]; then
        echo "First sign-in, as the clinic's first admin (once, within 48 hours):"
        echo "  ${first##*$'\n'}"
    fi
}
