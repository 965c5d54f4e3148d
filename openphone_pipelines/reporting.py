"""Presentation only: every markdown table shown in the Dagster UI and every alert's subject and body.

The domain modules compute; this module words. Tables are pandas DataFrames rendered by one
function, so every table in the UI looks the same. Alerts never carry phone numbers or message text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from openphone_pipelines.reconciliation import DayFigures
    from openphone_pipelines.recovery import FailureRate, MonitorThresholds, SweepCounts
    from openphone_pipelines.store.health_checks import FailedProbe, ProbeOutage, ProbeStats
    from openphone_pipelines.store.retry_queue import QueueRow

SUBJECT_PREFIX = "[openphone-pipelines]"
NONE = "–"

# ------------------------------------------------------------------------------------ tables


def markdown_table(frame: pd.DataFrame, *, empty: str = "(none)") -> str:
    """A DataFrame as a markdown table (numeric columns right-aligned), without `tabulate`."""
    if frame.empty:
        return empty
    rule = "|" + "".join("---:|" if pd.api.types.is_numeric_dtype(frame[c]) else "---|" for c in frame.columns)
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def per_day_markdown(days: Mapping[Any, DayFigures]) -> str:
    """What the reconciliation walk did, one row per UTC day."""
    frame = pd.DataFrame(
        [(str(day), f.messages_seen, f.inserted, f.repaired, f.unchanged, f.probes_skipped)
         for day, f in sorted(days.items())],
        columns=["day", "seen", "inserted (missed)", "repaired", "unchanged", "probes skipped"],
    )
    return markdown_table(frame)


def misses_markdown(misses: Counter[tuple[str, str]], limit: int = 20) -> str:
    """The lines and conversations where webhooks missed messages, most first."""
    if not misses:
        return "No messages were missed by webhooks."
    frame = pd.DataFrame([(line, conv, n) for (line, conv), n in misses.most_common(limit)],
                         columns=["line", "conversation", "missed"])
    table = markdown_table(frame)
    if len(misses) > limit:
        table += f"\n| … | {len(misses) - limit} more conversations | {sum(misses.values())} total |"
    return table


def coverage_markdown(by_day: pd.DataFrame) -> str:
    """First-seen sources and webhook coverage per UTC day (`by_day` from integrity.webhook_coverage)."""
    if by_day.empty:
        return "No messages in the window."
    frame = by_day.reset_index(names="day")
    frame["coverage"] = ["n/a" if pd.isna(c) else f"{c:.1%}" for c in frame["coverage"]]
    return markdown_table(frame)


def probe_history_markdown(stats: Sequence[ProbeStats]) -> str:
    """Probe success rate and latency percentiles, one row per window."""

    def ms(value: float | None) -> str:
        return NONE if value is None else f"{value:,.0f}"

    rows = []
    for s in stats:
        days = s.window_hours % 24 == 0 and s.window_hours > 24
        label = f"{s.window_hours // 24} d" if days else f"{s.window_hours} h"
        rate = NONE if s.success_rate is None else f"{s.success_rate:.1%}"
        rows.append((label, s.probes, s.received, s.failed, s.pending, rate, ms(s.latency_p50_ms),
                     ms(s.latency_p95_ms), ms(s.latency_p99_ms), ms(s.latency_max_ms)))
    columns = ["window", "probes", "received", "failed", "pending", "success rate", "p50 ms", "p95 ms",
               "p99 ms", "max ms"]
    return markdown_table(pd.DataFrame(rows, columns=columns))


def queue_rows_markdown(rows: Sequence[QueueRow], limit: int = 200) -> str:
    """Retry-queue rows after a replay (the error shortened to one table cell)."""
    frame = pd.DataFrame(
        [(r.id, r.webhook_event_id, r.status, r.attempts, (r.last_error or "")[:80]) for r in rows[:limit]],
        columns=["queue id", "event id", "status", "attempts", "last error"],
    )
    return markdown_table(frame)


# ------------------------------------------------------------------------------------ alerts


def _with_link(body: str, url: str | None, label: str = "Dagster") -> str:
    return body + (f"\n{label}: {url}\n" if url else "")


def probe_failed_alert(probe: FailedProbe, context_url: str | None) -> tuple[str, str]:
    body = (
        f"Webhook health probe {probe.id} failed.\n\n"
        f"Reason: {probe.error or 'unknown'}\n"
        f"Sent at: {probe.sent_at.isoformat()}\n"
        f"Nonce: {probe.nonce}\n\n"
        "A failed probe is never resent; the next hourly probe checks again.\n"
        "Check that the webhook receiver is reachable and that OpenPhone's webhook is enabled.\n"
    )
    return f"{SUBJECT_PREFIX} webhook health probe {probe.id} failed", _with_link(body, context_url)


def probe_outage_alert(outage: ProbeOutage, context_url: str | None) -> tuple[str, str]:
    hours = outage.silent_seconds / 3600
    body = (
        f"No webhook health probe has succeeded for {hours:.1f} hours "
        f"(since {outage.since.isoformat()}).\n\n"
        "Webhooks from OpenPhone may not be reaching the receiver; the daily reconciliation will\n"
        "back-fill missed messages, but live delivery needs attention.\n"
    )
    subject = f"{SUBJECT_PREFIX} no successful webhook health probe for {hours:.0f}+ hours"
    return subject, _with_link(body, context_url)


def outage_summary(outage: ProbeOutage | None) -> str:
    return "none" if outage is None else f"no success for {outage.silent_seconds / 3600:.1f} h"


def swept_dead_letters_alert(counts: SweepCounts, context_url: str | None) -> tuple[str, str]:
    ids = ", ".join(str(i) for i in counts.dead_event_ids[:50])
    body = (
        f"{counts.dead} webhook event(s) were dead-lettered by the retry sweep.\n\n"
        f"webhook_events ids: {ids}\n\n"
        "They stay in failed_webhook_queue (status dead) until replayed or discarded:\n"
        "  openphone-pipelines replay --all-dead        (after fixing the cause)\n"
        "  openphone-pipelines replay --discard IDS --note TEXT\n"
    )
    return f"{SUBJECT_PREFIX} {counts.dead} webhook event(s) dead-lettered", _with_link(body, context_url)


def failure_rate_alert(stats: FailureRate, thresholds: MonitorThresholds, context_url: str | None) -> tuple[str, str]:
    minutes = stats.window_minutes
    body = (
        f"{stats.failed} of {stats.events} webhook events received in the last {minutes} minutes "
        f"failed their first processing ({stats.rate:.1%}; threshold {thresholds.failure_rate:.1%}).\n"
        f"Queue now: {stats.queue}\n"
    )
    subject = f"{SUBJECT_PREFIX} webhook failure rate {stats.rate:.1%} in the last {minutes} min"
    return subject, _with_link(body, context_url)


def new_dead_letters_alert(stats: FailureRate, thresholds: MonitorThresholds,
                           context_url: str | None) -> tuple[str, str]:
    minutes = stats.window_minutes
    body = (
        f"{stats.new_dead} webhook event(s) became dead letters in the last {minutes} minutes "
        f"(threshold {thresholds.dead_letters}).\nQueue now: {stats.queue}\n"
        "Replay after fixing the cause: openphone-pipelines replay --all-dead\n"
    )
    subject = f"{SUBJECT_PREFIX} {stats.new_dead} new dead letter(s) in the last {minutes} min"
    return subject, _with_link(body, context_url)


def _metadata_lines(metadata: Mapping[str, object]) -> list[str]:
    return [f"{key}:\n{value}" if isinstance(value, str) and "\n" in value else f"{key}: {value}"
            for key, value in metadata.items()]


def check_failure_alert(*, check_name: str, asset: str, partitions: str | None, severity: str,
                        description: str | None, metadata: Mapping[str, object], run_url: str) -> tuple[str, str]:
    """One failed asset-check evaluation: check, partition(s), its figures and the run's link."""
    partition = partitions or "(unpartitioned)"
    keys = [k.strip() for k in partition.split(",")]
    span = keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)} days)"
    body = [f"Asset check {check_name} on {asset} failed ({severity}).", f"Partition(s): {partition}"]
    if description:
        body.append(f"Summary: {description}")
    body += ["", "Figures:", *_metadata_lines(metadata), "", f"Run: {run_url}"]
    return f"[openphone] {severity}: check {check_name} failed for {span}", "\n".join(body)


def run_failure_alert(*, job_name: str, run_id: str, partitions: str, error: str, run_url: str) -> tuple[str, str]:
    body = [f"Job {job_name} failed.", f"Partition(s): {partitions}", f"Error: {error}", "", f"Run: {run_url}"]
    return f"[openphone] run failed: {job_name} ({run_id[:8]})", "\n".join(body)


def joined(values: Iterable[object], empty: str = "-") -> str:
    """Ids quoted in metadata: comma-separated, or `empty`."""
    return ", ".join(str(v) for v in values) or empty
