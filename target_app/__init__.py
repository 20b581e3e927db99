"""The FastAPI app that loadbench measures: the article's endpoints plus lab endpoints."""
