# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= .bocage-data
ORG_NAME ?= Bocage
HOST ?= 127.0.0.1
PORT ?= 8000
# AWS packaging and deployment (docs/deploy-aws.md)
STAGE ?= dev
REGION ?= eu-west-3
DIST ?= dist/aws
MERGE := infra/aws/resources.json
# The API and end-to-end suites again, their DynamoDB half over HTTP (tests/conftest.py, network
# mode). Left out: two volume tests (same code as their neighbours; 105 s on moto's server).
NETWORK_TESTS := tests/integration/test_api_errors.py tests/integration/test_api_hardening.py \
	tests/integration/test_api_identity.py tests/integration/test_messaging_api.py \
	tests/integration/test_retention.py tests/integration/test_polls.py \
	tests/integration/test_billing_api.py tests/integration/test_websocket_handlers.py \
	tests/integration/test_logging.py tests/integration/test_store_contract.py \
	tests/e2e/test_newcomer_walkthrough.py tests/e2e/test_messaging_walkthrough.py \
	tests/e2e/test_polls_walkthrough.py tests/e2e/test_billing_cli.py tests/e2e/test_replicas.py
NETWORK_SELECT := (dynamodb or e2e) and not test_a_crashed_job_resumes and not test_twenty_members_vote

CHROMIUM ?= /usr/bin/chromium
TURNSERVER ?= /usr/bin/turnserver

.PHONY: run test lint jscheck typecheck unit bench bench-web fuzz clean package infra-check test-network deploy deploy-preflight browser \
	web-dist

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The web app's NaCl and QR code libraries, pinned in package-lock.json (served from node_modules).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

## browser: Debian's Chromium for the browser tests (never a downloaded browser build)
browser: $(CHROMIUM)
$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji

## coturn: Debian's TURN server (and its test client) for the call tests
$(TURNSERVER):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends coturn

## run: serve Bocage on this machine, on the embedded SQLite store in $(DATA)
run: $(BIN)/.installed node_modules/.package-lock.json
	$(BIN)/bocage serve --host $(HOST) --port $(PORT) --data $(DATA) --org-name "$(ORG_NAME)"

## test: lint, format check, type check, the whole test suite, the AWS template check, and the
## API suite again over HTTP to a DynamoDB-API server
test: $(BIN)/.installed node_modules/.package-lock.json $(CHROMIUM) $(TURNSERVER) lint typecheck
	$(BIN)/pytest --durations=30
	$(MAKE) infra-check
	$(MAKE) test-network

## test-network: the API and e2e tests with DynamoDB over HTTP (moto's server on loopback, or the
## server at BOCAGE_DYNAMODB_ENDPOINT, e.g. ScyllaDB Alternator)
test-network: $(BIN)/.installed
	BOCAGE_TEST_STORE=dynamodb-server $(BIN)/pytest -q $(NETWORK_TESTS) -k "$(NETWORK_SELECT)"

## package: the SAM template and the code for AWS, in $(DIST)/ (sam.json, deployment.zip with
## its bytecode: Lambda cannot cache it, see bench/bundle.py), and openapi.json (docs/api.md)
package: $(BIN)/.installed
	rm -rf $(DIST)
	AWS_DEFAULT_REGION=$(REGION) $(BIN)/chalice package --stage $(STAGE) --merge-template $(MERGE) $(DIST)
	$(BIN)/python infra/aws/precompile.py $(DIST)/deployment.zip
	$(BIN)/python -m chalicelib.openapi $(DIST)/openapi.json

## web-dist: the web app as static files in dist/web/, the layout `bocage serve` gives /app/ (web/
## and the allow-listed vendor/ files of node_modules): upload it to the AppBucket (docs/deploy-aws.md)
web-dist: $(BIN)/.installed node_modules/.package-lock.json
	$(BIN)/python infra/web_dist.py dist/web

## infra-check: package both stages offline and lint the templates (cfn-lint, informational rules too)
infra-check: $(BIN)/.installed
	@for stage in dev prod; do \
	  rm -rf dist/check/$$stage && \
	  AWS_DEFAULT_REGION=$(REGION) $(BIN)/chalice package --stage $$stage --merge-template $(MERGE) \
	    dist/check/$$stage > /dev/null && \
	  $(BIN)/cfn-lint --include-checks I -- dist/check/$$stage/sam.json && \
	  echo "cfn-lint: dist/check/$$stage/sam.json passes" || exit 1; \
	done

## deploy: package, upload the code to S3 and create or update the stack bocage-$(STAGE).
## Never in CI. make deploy STAGE=prod BUCKET=my-artifacts MAIL_FROM=no-reply@example.org
##   [OPERATOR_KEYS=k1,k2] [ALARM_EMAIL=ops@example.org] [PARAMS="PublicUrl=https://..."]
## Parameters left out keep their current value on an update.
DEPLOY_PARAMS = Stage=$(STAGE) $(if $(MAIL_FROM),MailFromAddress=$(MAIL_FROM)) \
	$(if $(OPERATOR_KEYS),OperatorKeys=$(OPERATOR_KEYS)) $(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL)) $(PARAMS)
deploy-preflight:
	@if [ -n "$$CI" ]; then echo "make deploy never runs in CI" >&2; exit 1; fi
	@if [ -z "$(BUCKET)" ]; then echo "BUCKET=<an S3 bucket in $(REGION) for the code> is required" >&2; exit 1; fi

deploy: deploy-preflight package
	aws sts get-caller-identity --query Account --output text
	aws cloudformation package --region $(REGION) --template-file $(DIST)/sam.json \
	  --s3-bucket $(BUCKET) --s3-prefix bocage-$(STAGE) --use-json --output-template-file $(DIST)/packaged.json
	aws cloudformation deploy --region $(REGION) --template-file $(DIST)/packaged.json \
	  --stack-name bocage-$(STAGE) --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
	  --no-fail-on-empty-changeset --parameter-overrides $(DEPLOY_PARAMS)

lint: $(BIN)/.installed jscheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## jscheck: type-check the web app's JS (// @ts-check, JSDoc) with the pinned TypeScript compiler
jscheck: node_modules/.package-lock.json
	node_modules/.bin/tsc -p web-types --noEmit
	node_modules/.bin/tsc -p web-types/tsconfig.sw.json --noEmit

typecheck: $(BIN)/.installed
	$(BIN)/mypy .

bench: $(BIN)/.installed
	$(BIN)/python bench/identity_ops.py
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/bundle.py

## fuzz: the long fuzz run (bench/fuzz.py): about 10,000 signed, generated requests against
## `bocage serve`; 0 server errors and 0 answers outside the spec expected
fuzz: $(BIN)/.installed
	$(BIN)/python bench/fuzz.py

## bench-web: the web app's first load in Chromium on slow 4G (bytes, requests, time to usable)
bench-web: $(BIN)/.installed node_modules/.package-lock.json
	$(BIN)/python bench/page_weight.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist
