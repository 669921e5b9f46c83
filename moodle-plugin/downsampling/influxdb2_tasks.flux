// logstore_tsdb: downsampling for InfluxDB 2.x, as two tasks (not run by this project's tests: no 2.x server here;
// they are the Flux equivalents of influxdb1_continuous_queries.influxql, which is tested against InfluxDB 1.6.7).
//
// 1. Create a bucket for the rollups with a long retention, and shorten the raw bucket's:
//      influx bucket create --name moodle_rollup --retention 1825d --org ORG
//      influx bucket update --id $(influx bucket list --name moodle --hide-headers | cut -f1) --retention 400d
// 2. Replace "moodle" (the plugin's bucket), "moodle_rollup", "moodle_events" (measurement) and "ORG", then create
//    each task from its own file (split this file at the "--- task" lines):
//      influx task create --org ORG --file moodle_events_hourly.flux
//      influx task create --org ORG --file moodle_active_users_daily.flux
// 3. Backfill older points once by running the body of a task with range(start: 2025-01-01T00:00:00Z, stop: ...)
//    in the Data Explorer / `influx query`.

// --- task 1: moodle_events_hourly.flux
option task = {name: "moodle_events_hourly", every: 10m, offset: 1m}

from(bucket: "moodle")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "moodle_events" and r._field == "anonymous")
    |> group(columns: ["courseid", "eventname", "component", "edulevel", "crud", "origin"])
    |> aggregateWindow(every: 1h, fn: count, createEmpty: false, timeSrc: "_start")
    |> map(fn: (r) => ({r with _measurement: "moodle_events_hourly", _field: "events"}))
    |> to(bucket: "moodle_rollup", org: "ORG")

// --- task 2: moodle_active_users_daily.flux
option task = {name: "moodle_active_users_daily", every: 1h, offset: 5m}

from(bucket: "moodle")
    |> range(start: -2d)
    |> filter(fn: (r) => r._measurement == "moodle_events" and r._field == "userid" and r._value > 0)
    |> group()
    |> window(every: 1d)
    |> distinct()
    |> count()
    |> map(fn: (r) => ({_time: r._start, _measurement: "moodle_active_users_daily", _field: "active_users", _value: r._value}))
    |> to(bucket: "moodle_rollup", org: "ORG")
