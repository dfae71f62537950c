# The two commands a newcomer needs: `make demo` and `make test`.
.PHONY: demo test lint fake-graph bench

demo:
	scripts/demo.sh

test:
	scripts/test.sh

lint:
	ruff check .

fake-graph:
	PYTHONPATH=whatsapp_coexistence/tools python3 -m fake_graph --port 8765 --verbose

bench:
	python3 bench/run.py
