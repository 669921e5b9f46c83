#!/usr/bin/python3
"""Draws docs/grafana/img/<backend>-<dashboard>.png: each dashboard as a grid of its panels, from what its panel
queries return on real data. Not a Grafana screenshot (there is no Grafana here): matplotlib draws the query results.

    /usr/bin/python3 docs/grafana/render.py [--so target/release/libtsdb.so] [--days 7] [--events 20000]
                                            [--seconds 180] [--no-influxdb] [--out docs/grafana/img] [--json FILE]

1. Starts a throwaway PostgreSQL (tests/servers/postgres.sh), InfluxDB 1.x (tests/servers/influxdb.sh) and a real
   Moodle site with the plugin (tests/servers/moodle.sh, the newest Moodle tree of ../shared/moodle).
2. Writes DAYS simulated Moodle days (php/demo/moodle_day.php: EVENTS per weekday, a third on Saturday and Sunday,
   ending yesterday UTC) through the tsdb extension into the table logstore_tsdb_log and the InfluxDB database
   `moodle`, one PHP process of the site per backend in parallel, paced over SECONDS; each process reports its
   counters to the site's tables (logstore_tsdb_workers / _metrics) through the plugin, which is what the health board
   reads.
3. Refreshes the plugin's summary (PostgreSQL) and backfills the shipped InfluxDB rollups, then runs every panel
   query of every dashboard, expanded by the test suite's code (render_data.php, render_probe.php).
4. Stops the servers and draws one PNG per dashboard (matplotlib: Debian's python3-matplotlib).
"""
import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BANNER = "rendered from the panel queries by docs/grafana/render.py — not a Grafana screenshot"
COLOURS = ["#3274d9", "#e0752d", "#56a64b", "#a352cc", "#f2cc0c", "#8ab8ff", "#ff7383"]
UNIT = 0.42  # inches per Grafana grid row (30 px)


# ------------------------------------------------------------------------------------------------ data
def start_servers(run, influx, so):
    """Sources the project's server helpers; returns the TSDB_TEST_* variables they export (the site's directory in
    TSDB_TEST_MOODLE_SITES)."""
    script = 'source tests/moodle/servers.sh && start_postgres "$1" >&2 || exit 1\n'
    if influx:
        script += 'start_influxdb "$1" >&2 || exit 1\n'
    script += 'start_moodle "$1" "$(moodle_versions | head -n 1)" >&2 || exit 1\nenv -0\n'
    out = subprocess.run(["bash", "-c", script, "bash", run], cwd=REPO, stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, TSDB_SO=so)).stdout
    env = dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)
    return {k: v for k, v in env.items() if k.startswith("TSDB_TEST_")}


def stop_servers(run):
    subprocess.run(["bash", "-c", 'source tests/moodle/servers.sh && tsdb_moodle_stop_servers "$1"', "bash", run],
                   cwd=REPO, check=False)


def collect(args):
    """Runs the servers, the load and the queries; returns render_data.php's JSON."""
    run = tempfile.mkdtemp(prefix="tsdb-grafana-render-")
    os.chmod(run, 0o755)  # PostgreSQL runs as the postgres user
    try:
        env = dict(os.environ, **start_servers(run, args.influxdb, os.path.abspath(args.so)))
        env.pop("TSDB_TEST_REQUIRE_SERVERS", None)
        env["MOODLE_SITE"] = env["TSDB_TEST_MOODLE_SITES"].split()[0]
        site = json.load(open(os.path.join(env["MOODLE_SITE"], "site.json")))
        php = ["php"] + site["phpargs"] + [os.path.join(HERE, "render_data.php")]
        subprocess.run(php + ["install"], env=env, check=True)
        first = (int(time.time()) // 86400 - args.days) * 86400
        t0 = int(time.time())
        fills = [subprocess.Popen(php + ["fill", b, str(first), str(args.days), str(args.events), str(args.seconds)],
                                  env=env) for b in (["postgres", "influxdb"] if args.influxdb else ["postgres"])]
        if any(p.wait() != 0 for p in fills):
            sys.exit("render.py: the load failed")
        t1 = int(time.time())
        out = subprocess.run(php + ["query", str(first), str(first + args.days * 86400), str(t0 - t0 % 60 - 60),
                                    str(t1 + 60)], env=env, stdout=subprocess.PIPE, check=True).stdout
        return {"events": args.events, "days": args.days, "seconds": args.seconds, "boards": json.loads(out)}
    finally:
        stop_servers(run)


# ------------------------------------------------------------------------------------------------ shapes
def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def when(v):
    """A time value of either backend (epoch seconds or milliseconds, or PostgreSQL text) as a datetime."""
    if isinstance(v, (int, float)) or re.fullmatch(r"\d+(\.\d+)?", str(v)):
        v = float(v)
        return dt.datetime.fromtimestamp(v / 1000 if v > 1e11 else v, dt.timezone.utc)
    s = str(v).replace(" ", "T", 1)
    s = re.sub(r"([+-]\d\d)$", r"\1:00", s)
    return dt.datetime.fromisoformat(s)


def series_of(target):
    """Time series as Grafana builds them: [(label, [times], [values])]."""
    out = []
    if "rows" in target:
        rows = target["rows"]
        cols = [c for c in (rows[0] if rows else {}) if c not in ("time", "metric")]
        groups = {}
        for r in rows:
            groups.setdefault(r.get("metric"), []).append(r)
        for metric, rs in groups.items():
            for c in cols:
                label = c if metric is None else (f"{metric} {c}" if len(cols) > 1 else str(metric))
                out.append((label, [when(r["time"]) for r in rs], [num(r[c]) for r in rs]))
        return out
    for s in target["series"]:
        tags = s.get("tags", {})
        for i, c in enumerate(s["columns"][1:], 1):
            alias = target.get("alias") or ""
            label = re.sub(r"\$tag_(\w+)", lambda m: tags.get(m.group(1), ""), alias) if alias else \
                " ".join([c] + [f"{k}={v}" for k, v in tags.items()])
            out.append((label, [when(v[0]) for v in s["values"]], [num(v[i]) for v in s["values"]]))
    return out


def table_of(target):
    """(columns, rows) of a table panel (InfluxDB: tags first; a time column that says nothing is left out)."""
    if "rows" in target:
        rows = target["rows"]
        cols = list(rows[0]) if rows else []
        return cols, [[r[c] for c in cols] for r in rows]
    series = target["series"]
    tagkeys = list(series[0].get("tags", {})) if series else []
    cols = tagkeys + (series[0]["columns"] if series else [])
    rows = [[s.get("tags", {}).get(k) for k in tagkeys] + v for s in series for v in s["values"]]
    ti = len(tagkeys)
    if len({r[ti] for r in rows}) <= 1:
        cols, rows = cols[:ti] + cols[ti + 1:], [r[:ti] + r[ti + 1:] for r in rows]
    else:
        rows = [r[:ti] + [when(r[ti]).strftime("%Y-%m-%d %H:%M:%S")] + r[ti + 1:] for r in rows]
    return cols, rows


def cell(v, width=34):
    if v is None:
        return ""
    n = num(v)
    if n is not None and not isinstance(v, bool) and re.fullmatch(r"-?\d+\.\d{4,}", str(v)):
        v = f"{n:.2f}"
    s = str(v)
    s = re.sub(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(\+00)?$", r"\1 \2", s)
    return s if len(s) <= width else s[:width - 1] + "…"


# ------------------------------------------------------------------------------------------------ drawing
def draw_timeseries(ax, targets):
    lines = [s for t in targets for s in series_of(t)]
    for i, (label, xs, ys) in enumerate(lines):
        style = "o-" if len(xs) < 20 else "-"
        ax.plot(xs, ys, style, color=COLOURS[i % len(COLOURS)], label=label, lw=1.1, ms=3)
    locator = mdates.AutoDateLocator(tz=dt.timezone.utc, minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.timezone.utc))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    if lines:
        ax.legend(fontsize=7, loc="upper left", ncol=min(4, len(lines)), frameon=False)


def draw_stat(ax, targets):
    t = targets[0]
    if "rows" in t:
        value = list(t["rows"][0].values())[0]
    else:
        value = t["series"][0]["values"][-1][1]
    n = num(value)
    ax.text(0.5, 0.45, f"{n:,.0f}" if n is not None else str(value), ha="center", va="center", fontsize=26,
            color="#3274d9", weight="bold", transform=ax.transAxes)
    ax.axis("off")


def draw_table(ax, targets, h):
    cols, rows = table_of(targets[0])
    ax.axis("off")
    if not rows:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", color="#888", transform=ax.transAxes)
        return
    fit = max(3, int(h * UNIT / 0.19) - 1)
    shown = [[cell(v) for v in r] for r in rows[:fit]]
    widths = [max(len(str(c)), *(len(r[i]) for r in shown)) + 2 for i, c in enumerate(cols)]
    frac = (len(shown) + 1) / (fit + 1)
    tbl = ax.table(cellText=shown, colLabels=cols, cellLoc="left", colLoc="left",
                   colWidths=[w / sum(widths) for w in widths], bbox=[0, 1 - frac, 1, frac])
    tbl.auto_set_font_size(False)
    tbl.set_fontsize(7)
    for (r, _), c in tbl.get_celld().items():
        c.set_edgecolor("#dddddd")
        if r == 0:
            c.set_facecolor("#eef1f5")
            c.set_text_props(weight="bold")
    if len(rows) > len(shown):
        ax.text(1, 1 - frac, f"{len(shown)} of {len(rows)} rows shown", ha="right", va="top", fontsize=7,
                color="#888", transform=ax.transAxes)


def draw_bars(ax, targets):
    cols, rows = table_of(targets[0])
    labels = [cell(r[0]) for r in rows][::-1]
    ax.barh(labels, [num(r[1]) or 0 for r in rows][::-1], color=COLOURS[0])
    ax.set_ylabel(cols[0], fontsize=7, labelpad=1)
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3)


def draw_pie(ax, targets):
    cols, rows = table_of(targets[0])
    values = [num(r[1]) or 0 for r in rows]
    ax.pie(values, labels=[f"{r[0]} ({v:,.0f})" for r, v in zip(rows, values)], colors=COLOURS,
           textprops={"fontsize": 7}, startangle=90, counterclock=False)
    ax.axis("equal")


def describe(meta, board):
    rng = board["to"] - board["from"]
    fmt = "%Y-%m-%d %H:%M" if rng < 86400 else "%Y-%m-%d"
    span = " to ".join(dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime(fmt) for t in (board["from"], board["to"]))
    vars_ = ", ".join(f"{k} = {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in board["vars"].items())
    if board["file"] == "system-health.json":
        data = (f"the counters the two loading PHP processes reported (PostgreSQL, InfluxDB), {meta['seconds']} s of load"
                f"; range {span} UTC")
    else:
        data = (f"{meta['days']} simulated Moodle days (php/demo/moodle_day.php, {meta['events']:,} events per weekday) "
                f"written through the tsdb extension; range {span} UTC")
    return f"{data}{'; ' + vars_ if vars_ else ''}"


def render(meta, board, path):
    width, header = 15.0, 0.85
    height = header + UNIT * max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"]) + 0.1
    colw = (width - 0.2) / 24
    fig = plt.figure(figsize=(width, height))
    fig.text(0.5, 1 - 0.3 / height, f"{board['title']}  ·  {BANNER}", ha="center", fontsize=12, weight="bold")
    fig.text(0.5, 1 - 0.58 / height, describe(meta, board), ha="center", fontsize=8.5, color="#555")
    draw = {"timeseries": draw_timeseries, "stat": draw_stat, "barchart": draw_bars, "piechart": draw_pie}
    for p in board["panels"]:
        g, kind = p["gridPos"], p["type"]
        # Panel box in inches, then the axes inside it: room for the title, tick labels and the frame.
        left, top = 0.1 + g["x"] * colw, header + g["y"] * UNIT
        pad_l, pad_b = {"timeseries": (0.55, 0.45), "barchart": (0.55, 0.35)}.get(kind, (0.1, 0.08))
        box = fig.add_axes([left / width, 1 - (top + g["h"] * UNIT) / height, g["w"] * colw / width,
                            g["h"] * UNIT / height])
        box.set_xticks([])
        box.set_yticks([])
        for side in box.spines.values():
            side.set_color("#d8d9da")
        box.text(0.08 / (g["w"] * colw), 1 - 0.1 / (g["h"] * UNIT), p["title"], fontsize=9.5, weight="bold",
                 va="top", transform=box.transAxes)
        ax = fig.add_axes([(left + pad_l) / width, 1 - (top + g["h"] * UNIT - pad_b) / height,
                           (g["w"] * colw - pad_l - 0.12) / width, (g["h"] * UNIT - pad_b - 0.38) / height])
        if kind in draw:
            draw[kind](ax, p["targets"])
        else:
            draw_table(ax, p["targets"], g["h"])
    fig.savefig(path, dpi=72)
    plt.close(fig)
    print(f"render.py: {os.path.relpath(path, REPO)} ({os.path.getsize(path) // 1024} KB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--so", default=os.path.join(REPO, "target/release/libtsdb.so"))
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--events", type=int, default=20000, help="events per weekday (weekend days: a third)")
    ap.add_argument("--seconds", type=int, default=180, help="wall time the load is spread over (health board)")
    ap.add_argument("--no-influxdb", dest="influxdb", action="store_false")
    ap.add_argument("--out", default=os.path.join(HERE, "img"))
    ap.add_argument("--json", help="also keep the query results in this file; with --from-json: draw from it")
    ap.add_argument("--from-json", action="store_true", help="draw from --json without starting anything")
    args = ap.parse_args()
    if args.from_json:
        meta = json.load(open(args.json))
    else:
        meta = collect(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(meta, f)
    os.makedirs(args.out, exist_ok=True)
    for board in meta["boards"]:
        render(meta, board, os.path.join(args.out, f"{board['backend']}-{board['file'][:-5]}.png"))


if __name__ == "__main__":
    main()
