# The two commands of the README: `make sample` and `make test`.
# Both create the virtual environment and install what they need on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: sample test lint chromium fonts ncarg-data bench screenshots

$(BIN)/covmap: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/covmap data fetch
	touch $@

# Exit code 1 means "done, with findings": the sample has deliberately bad rows.
sample: $(BIN)/covmap
	$(BIN)/covmap build --sample || [ $$? -eq 1 ]

# Debian's chromium drives the browser tests; installing it needs root (as in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests"; fi; }

# A CJK font, so that chromium draws the pages' Chinese labels (screenshots, browser tests).
fonts:
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-noto-cjk; \
	  else echo "no CJK font: run 'sudo apt-get install fonts-noto-cjk' for readable screenshots"; fi; }

# Debian's libncarg-data ships trinidad.nc, a real 3" Colorado DEM in feet, used by the terrain tests.
NCARG_DEM = /usr/share/ncarg/data/cdf/trinidad.nc
ncarg-data:
	@test -f $(NCARG_DEM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libncarg-data; \
	  else echo "$(NCARG_DEM) is missing: run 'sudo apt-get install libncarg-data' for the terrain tests"; fi; }

lint: $(BIN)/covmap
	$(BIN)/ruff check .

test: $(BIN)/covmap chromium fonts ncarg-data lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(BIN)/covmap
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/predict.py

# docs/national.png and docs/county.png of the README, from the sample's published site
screenshots: sample chromium fonts
	$(BIN)/python docs/screenshots.py
