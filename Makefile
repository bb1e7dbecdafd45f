# The two commands a newcomer needs:
#   make run    start the local server (sandbox credentials unless STREAM_API_KEY is set)
#   make test   run the whole test suite (installs its pinned tools into .tools/)
.PHONY: run test bench

run:
	cargo run --quiet -p callbridge-local

test:
	bash scripts/test.sh

bench:
	cargo bench -p callbridge
