"""Where a 1,000-item check spends its time, in process (issue 14: "the time split").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kyoka_bench .venv/bin/python bench/bench_check_split.py

Runs against the database `bench_checks.py` seeds (run that first). Each request goes through
the whole Django application (middleware, authentication, quota, the view) via its WSGI handler,
without gunicorn and without a socket; beside that, the same bodies are taken step by step
through the check's own stages, each timed, so the table says what every stage costs and how
much is the framework around them. The bare database lookup of the same items is measured in
the same run, as the baseline every line is compared with.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_checks  # sets the environment the server would have


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    from registry.access import Actor
    from registry.decisions.batch import batch_decide, batch_parse
    from registry.decisions.parse import parse_check_request
    from registry.decisions.run import check_record_write, check_render
    from registry.models import ApiKey, Organization
    from registry.receipts import sign_receipt
    from registry.warm import check_path_warm

    bench_checks.warm_database()
    key = bench_checks.api_key()
    rng = random.Random(2026)
    batches = [bench_checks.mixed_items(1000, args.works, rng) for _ in range(args.requests)]
    bodies = [json.dumps({"purpose": "train-genai", "territory": "JP", "items": b}).encode() for b in batches]
    check_path_warm()

    application = WSGIHandler()

    def wsgi(body: bytes) -> float:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/checks", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {key}", "wsgi.errors": sys.stderr,
        }
        status = []
        started = time.perf_counter()
        chunks = application(environ, lambda s, h, *a: status.append(s))
        b"".join(chunks)
        elapsed = time.perf_counter() - started
        if not status[0].startswith("200"):
            raise RuntimeError(f"check failed: {status[0]}")
        return elapsed

    organization = Organization.objects.get(name="Bench AI")
    api_key = ApiKey.objects.filter(organization=organization).order_by("-created_at").first()
    actor = Actor.for_key(api_key)
    stages: dict[str, list[float]] = {name: [] for name in
                                      ("json", "parse", "decide", "render", "sign", "records")}

    def staged(body: bytes) -> float:
        begin = time.perf_counter()
        data = json.loads(body)
        t1 = time.perf_counter()
        terms = parse_check_request(requester=organization, purpose=data["purpose"], territory=data["territory"])
        batch = batch_parse(data["items"])
        t2 = time.perf_counter()
        decided = batch_decide(terms, batch)
        t4 = time.perf_counter()
        rendered = check_render(request_terms=terms, decided=decided)  # renders, compresses and signs
        t5 = time.perf_counter()
        sign_receipt(rendered.body)  # signed again on its own, to take the signing out of the render's time
        signing = time.perf_counter() - t5
        t6 = time.perf_counter()
        check_record_write(actor=actor, request_terms=terms, decided=decided, rendered=rendered)
        t7 = time.perf_counter()
        spans = [t1 - begin, t2 - t1, t4 - t2, t5 - t4 - signing, signing, t7 - t6]
        for name, span in zip(stages, spans, strict=True):
            stages[name].append(span)
        return t7 - begin - (t6 - t5)

    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} dbname={db['NAME']} user={db['USER']}"
    bare, _ = bench_checks.bare_lookup(dsn, batches, 1)
    for body in bodies[:3]:
        wsgi(body)
        staged(body)
    whole = [wsgi(body) for body in bodies]
    stepped = [staged(body) for body in bodies]

    print(f"\n1,000-item check, in process, {args.requests} requests (medians, ms); "
          f"bare lookup of the same items {median_ms(bare):.1f} ms")
    rows = [("whole request through Django (WSGI)", median_ms(whole)),
            ("  of which the stages below", median_ms(stepped)),
            ("  framework: middleware, auth, quota, view", median_ms(whole) - median_ms(stepped))]
    labels = {"json": "JSON body decode", "parse": "parse terms and items",
              "decide": "decide (filter, queries, rules)", "render": "render body + compress", "sign": "sign (JWS)",
              "records": "write Check + WorkAccess"}
    rows += [(f"    {labels[name]}", median_ms(samples)) for name, samples in stages.items()]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)} | {value:6.1f}")


if __name__ == "__main__":
    main()
