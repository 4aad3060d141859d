# The web-tested path runs this (the Workload's `testing_command`, default `sh test.sh`) in the
# unpacked source; a non-zero exit stops the path at the test stage.
set -e
grep -q "hello from the paved path" app.py
echo "1 test passed"
