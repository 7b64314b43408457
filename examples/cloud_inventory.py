"""The seeds' cloud-inventory pipeline: list resources, build an HTML report, e-mail it, tell Slack.

1. one Bash task per kind of resource lists them (a stand-in for ``aws ec2 describe-instances``
   and friends: a small command that prints JSON); the last line of its output is its result,
2. a Python task pulls the three lists and builds an HTML report (and a count per kind),
3. an e-mail task sends the report: its subject and body are templates that pull the report,
4. a Slack task posts a one-line summary to an incoming webhook.

Where mail and Slack go is configuration, not code: the ``smtp_default`` connection (or the
``smtp_url`` setting) and the ``slack_inventory`` connection, for example::

    export DUCTWORK_CONN_SMTP_DEFAULT='smtp://127.0.0.1:8025?sender=inventory%40example.com'
    export DUCTWORK_CONN_SLACK_INVENTORY='http://127.0.0.1:8080/services/T000/B000/XXXX'
    ductwork run cloud_inventory --date 2024-01-31

``make demo`` starts local stand-ins for both (``scripts/standins.py``) and sets them. The region
is the variable ``cloud_region`` (``DUCTWORK_VAR_CLOUD_REGION``), ``eu-west-1`` by default.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ductwork import BashOperator, Flow, PythonOperator
from ductwork.integrations.email import EmailOperator
from ductwork.integrations.slack import SlackWebhookOperator

REGION = "{{ var.value.get('cloud_region', 'eu-west-1') }}"

# What each listing prints: progress lines, then the resources as JSON on the last line.
LISTINGS = {
    "compute": [
        {"id": "i-0a17", "name": "web-1", "type": "m6i.large", "state": "running"},
        {"id": "i-0b42", "name": "web-2", "type": "m6i.large", "state": "running"},
        {"id": "i-0c99", "name": "batch-7", "type": "c6i.4xlarge", "state": "stopped"},
    ],
    "storage": [
        {"id": "sales-raw", "name": "sales-raw", "type": "bucket", "state": "2.1 TiB"},
        {"id": "vol-0f3", "name": "db-data", "type": "gp3 500 GiB", "state": "in-use"},
    ],
    "databases": [
        {"id": "db-orders", "name": "orders", "type": "postgres 16", "state": "available"},
    ],
}


def listing_command(kind: str) -> str:
    """A stand-in for a cloud CLI call: say what it does, then print the JSON."""
    payload = json.dumps({"kind": kind, "region": "__REGION__", "items": LISTINGS[kind]})
    return f'echo "listing {kind} in {REGION} for {{{{ ds }}}}" && echo \'{payload}\' | sed "s/__REGION__/{REGION}/"'


def build_report(ti: Any, ds: str) -> dict[str, Any]:
    """Pull every listing, push the HTML report and the counts, return the counts."""
    listings = [json.loads(text) for text in ti.xcom_pull(task_ids=[f"list_{kind}" for kind in LISTINGS])]
    counts = {listing["kind"]: len(listing["items"]) for listing in listings}
    rows = "".join(
        f"<tr><td>{html.escape(listing['kind'])}</td><td>{html.escape(item['id'])}</td>"
        f"<td>{html.escape(item['name'])}</td><td>{html.escape(item['type'])}</td>"
        f"<td>{html.escape(item['state'])}</td></tr>"
        for listing in listings
        for item in listing["items"]
    )
    region = html.escape(listings[0]["region"]) if listings else "?"
    report = (
        f"<h2>Cloud inventory for {html.escape(ds)} ({region})</h2>"
        f"<p>{sum(counts.values())} resources: "
        + ", ".join(f"{n} {kind}" for kind, n in counts.items())
        + "</p><table><tr><th>kind</th><th>id</th><th>name</th><th>type</th><th>state</th></tr>"
        + rows
        + "</table>"
    )
    ti.xcom_push(key="html", value=report)
    ti.xcom_push(key="total", value=sum(counts.values()))
    print(f"report built: {sum(counts.values())} resources")
    return counts


with Flow(
    "cloud_inventory",
    schedule="@daily",
    start_date="2024-01-01",
    params={"recipients": "cloud-team@example.com"},
    tags=["example", "email", "slack"],
    description="List cloud resources, e-mail an HTML report and post a Slack summary",
    on_failure_email=["cloud-team@example.com"],
) as cloud_inventory:
    listings = [
        BashOperator(task_id=f"list_{kind}", bash_command=listing_command(kind), retries=1, retry_delay=5)
        for kind in LISTINGS
    ]
    report = PythonOperator(task_id="build_report", python_callable=build_report)
    email = EmailOperator(
        task_id="email_report",
        to="{{ params.recipients }}",
        subject="Cloud inventory {{ ds }}: {{ ti.xcom_pull(task_ids='build_report', key='total') }} resources",
        html_content="{{ ti.xcom_pull(task_ids='build_report', key='html') }}",
    )
    slack = SlackWebhookOperator(
        task_id="notify_slack",
        conn_id="slack_inventory",
        text=(
            ":cloud: Cloud inventory for {{ ds }}: "
            "{% for kind, n in ti.xcom_pull(task_ids='build_report').items() %}{{ n }} {{ kind }}"
            "{% if not loop.last %}, {% endif %}{% endfor %} (report e-mailed to {{ params.recipients }})"
        ),
    )
    listings >> report >> email >> slack
