"""The figures as a table, with the issue's targets marked PASS or MISS."""

from dataclasses import dataclass

# A one-minute load average above this when the run starts: something else is running.
BUSY_LOAD = 0.7


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    goal: str  # as printed: "≥ 60 %"
    met: bool | None  # None: not measured in this run

    def as_json(self) -> dict:
        return {"name": self.name, "value": self.value, "target": self.goal, "pass": self.met}


def _ratio(figures: dict, a: str, b: str) -> float | None:
    if a in figures and b in figures:
        return figures[a]["per_second"] / figures[b]["per_second"]
    return None


def targets(figures: dict) -> list[Target]:
    """The issue's targets for this machine, from the run's figures."""
    found = []
    for run in ("fan_out", "small_events"):
        limit, peer = _ratio(figures, run, "limit"), _ratio(figures, run, "peer")
        found += [
            Target(
                f"{run} vs raw smtplib", limit, "≥ 60 %", None if limit is None else limit >= 0.6
            ),
            Target(f"{run} vs post-office", peer, "≥ 2x", None if peer is None else peer >= 2),
        ]
    resolution = figures.get("resolution")
    seconds = resolution["seconds"] if resolution else None
    queries = resolution["queries"] if resolution else None
    found += [
        Target(
            "resolution seconds", seconds, "< 0.5 s", None if seconds is None else seconds < 0.5
        ),
        Target("resolution queries", queries, "≤ 20", None if queries is None else queries <= 20),
    ]
    api = figures.get("api")
    share = api["api"]["per_second"] / api["bare"]["per_second"] if api else None
    found.append(
        Target("API vs bare view", share, "≥ 50 %", None if share is None else share >= 0.5)
    )
    return found


def _mark(target: Target) -> str:
    return {True: "PASS", False: "MISS", None: "-"}[target.met]


def _rate(run: dict, unit: str = "msg/s") -> str:
    return f"{run['per_second']:,} {unit} ({run['seconds']:.1f} s)"


def _cpu(run: dict) -> str:
    return f"{run['sender_cpu_ms_per_message']:.2f} ms, {run['sink_cpu_ms_per_message']:.2f} ms"


def table(figures: dict, config: dict) -> str:
    by_name = {target.name: target for target in targets(figures)}
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, figure: str = "", target: Target | None = None) -> None:
        rows.append((label, figure, target.goal if target else "", _mark(target) if target else ""))

    def ratios(run: str) -> None:
        limit, peer = by_name[f"{run} vs raw smtplib"], by_name[f"{run} vs post-office"]
        if limit.value is not None:
            row("     vs raw smtplib", f"{limit.value:.0%}", limit)
        if peer.value is not None:
            row("     vs django-post-office", f"{peer.value:.1f}x", peer)

    if "limit" in figures:
        row("1. limit: raw smtplib, one connection", _rate(figures["limit"]))
        row("     CPU per message: smtplib, sink", _cpu(figures["limit"]))
    if "peer" in figures:
        row("2. peer: django-post-office send_queued", _rate(figures["peer"]))
        row("     CPU per message: post-office, sink", _cpu(figures["peer"]))
    if "fan_out" in figures:
        run = figures["fan_out"]
        row(f"3. Postmaster: 1 event to {run['messages']:,} recipients", _rate(run))
        row("     the API call answered in", f"{run['api_seconds']:.2f} s")
        row("     CPU per message: engine, sink", _cpu(run))
        ratios("fan_out")
    if "small_events" in figures:
        run = figures["small_events"]
        row(f"   Postmaster: {run['events']:,} events of 10 recipients", _rate(run))
        row("     CPU per message: engine, sink", _cpu(run))
        ratios("small_events")
    if "resolution" in figures:
        run = figures["resolution"]
        seconds, queries = by_name["resolution seconds"], by_name["resolution queries"]
        row(
            f"4. resolution of {run['recipients']:,} recipients", f"{run['seconds']:.3f} s", seconds
        )
        row("     queries", f"{run['queries']}", queries)
    if "api" in figures:
        run = figures["api"]
        api, bare = run["api"], run["bare"]
        row(
            f"5. events API, {run['clients']} clients, {run['seconds']:g} s",
            f"{api['per_second']:,} events/s (p50 {api['p50_ms']} ms)",
        )
        row("   bare Django JSON view", f"{bare['per_second']:,} req/s (p50 {bare['p50_ms']} ms)")
        row(
            "     API vs bare view",
            f"{by_name['API vs bare view'].value:.0%}",
            by_name["API vs bare view"],
        )

    header = ("measurement", "figure", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        f"Postmaster benchmark: {config['database']}, {config['engine']}, "
        f"{config['recipients']:,} recipients, {config['cpus']} CPUs",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    problems = notes(figures)
    if config["load_at_start"] > BUSY_LOAD:
        problems.append(
            f"! The machine was busy when the run started (load {config['load_at_start']}): "
            "the figures are lower than they should be."
        )
    if problems:
        lines += ["", *problems]
    return "\n".join(lines)


def notes(figures: dict) -> list[str]:
    """What went wrong on the way: duplicates, messages not recorded, refused API calls."""
    found = []
    for name in ("limit", "peer", "fan_out", "small_events"):
        run = figures.get(name)
        if run and run.get("duplicates"):
            found.append(f"! {name}: the sink received {run['duplicates']} Message-IDs twice.")
        if run and "recorded_sent" in run and run["recorded_sent"] != run["messages"]:
            recorded = f"{run['recorded_sent']} of {run['messages']}"
            found.append(f"! {name}: {recorded} deliveries recorded as sent.")
    api = figures.get("api")
    for name in ("api", "bare") if api else ():
        if api[name]["other_answers"] or api[name]["failures"]:
            found.append(
                f"! {name}: other answers {api[name]['other_answers']}, "
                f"failures {api[name]['failures']}"
            )
    return found
