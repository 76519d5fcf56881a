#!/usr/bin/env bash
# The test suite on a busy machine: pytest runs while two CPU-burning processes compete with it
# (a loaded 2-core laptop or CI runner). Arguments go to pytest (`tests/stress.sh tests/tui -x`).
# Exits with pytest's status; the burners are killed however it ends.
set -u
cd "$(dirname "$0")/.."

burners=()
cleanup() {
    for pid in "${burners[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait "${burners[@]}" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in 1 2; do
    python3 -c 'while True: pass' &
    burners+=("$!")
done

.venv/bin/pytest -q -p no:cacheprovider "$@"
