# Two entry points, each setting up .venv from requirements.txt first if needed:
#   make grade   grade the sample submissions (python -m grader)
#   make test    run all tests
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: grade test release

$(VENV)/installed: requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

grade: $(VENV)/installed
	$(PYTHON) -m grader

test: $(VENV)/installed
	$(PYTHON) -m pytest

release: $(VENV)/installed
	$(PYTHON) -m grader release
