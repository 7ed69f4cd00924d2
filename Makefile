# The two set-up commands of the README. Each creates the virtual environment
# from pyproject.toml on first use (offline-safe: nothing downloads a model or data).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test clean chromium sshd

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[train,test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/edgedl pipeline --model cnn --out runs/demo
	@echo "edgedl and edgedl-run are in $(VENV)/bin: '. $(VENV)/bin/activate' puts them on this shell's PATH"

test: $(VENV)/.installed chromium sshd
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The report test opens report.html in Debian's Chromium: installed here when missing (as root, as CI runs).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null; \
	  else echo "note: Chromium is missing (apt-get install chromium): the report-rendering test will fail"; fi

# The deploy tests start an OpenSSH server on a loopback port as their board: Debian's, installed here when missing.
sshd:
	@test -x /usr/sbin/sshd || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server) >/dev/null; \
	  else echo "note: OpenSSH's server is missing (apt-get install openssh-server): the deploy tests will be skipped"; fi

clean:
	rm -rf $(VENV) runs .pytest_cache
