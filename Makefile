# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean campaign

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dealsync demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope --durations=15 $(PYTEST_ARGS)

# The full kill campaign (a short subset of it runs in `make test`): 20 kills on the medium org.
campaign: $(STAMP)
	DEALSYNC_CAMPAIGN_TRIALS=$${DEALSYNC_CAMPAIGN_TRIALS:-20} DEALSYNC_CAMPAIGN_SIZE=$${DEALSYNC_CAMPAIGN_SIZE:-medium} \
		$(BIN)/python -m pytest -v tests/test_kill_campaign.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .dealsync
