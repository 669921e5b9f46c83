#!/usr/bin/env python3
"""Writes the Grafana dashboards of logstore_tsdb (docs/grafana/dashboards/**.json).

Edit the panels here and run `python3 docs/grafana/generate.py`; the JSON files are what admins import or provision,
and what tests/moodle/tests/grafana_test.php runs (every panel query, macros expanded as Grafana does) against the
real test databases.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PG = "grafana-postgresql-datasource"
INFLUX = "influxdb"


def ds_var(name, label, plugin, regex=""):
    return {"type": "datasource", "name": name, "label": label, "query": plugin, "regex": regex,
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1}


def text_var(name, label, value, hide=0):
    return {"type": "textbox", "name": name, "label": label, "query": value, "hide": hide,
            "current": {"selected": False, "text": value, "value": value},
            "options": [{"selected": True, "text": value, "value": value}]}


def query_var(name, label, ds, query, multi=True):
    return {"type": "query", "name": name, "label": label, "datasource": ds, "definition": query, "query": query,
            "refresh": 2, "multi": multi, "includeAll": multi, "sort": 3, "hide": 0, "regex": "",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
            "options": []}


class Dashboard:
    def __init__(self, uid, title, description, ds, variables, tags):
        self.d = {
            "uid": uid, "title": title, "description": description, "tags": ["moodle", "logstore_tsdb"] + tags,
            "timezone": "utc", "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
            "time": {"from": "now-7d", "to": "now"}, "refresh": "",
            "annotations": {"list": []}, "links": [],
            "templating": {"list": variables}, "panels": [],
        }
        self.ds = ds
        self.x = 0
        self.y = 0
        self.rowh = 0

    def panel(self, kind, title, targets, w=12, h=8, description="", options=None, fieldconfig=None, interval=None):
        if self.x + w > 24:
            self.x = 0
            self.y += self.rowh
            self.rowh = 0
        p = {"id": len(self.d["panels"]) + 1, "type": kind, "title": title, "description": description,
             "datasource": self.ds, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
             "targets": [], "options": options or {},
             "fieldConfig": fieldconfig or {"defaults": {}, "overrides": []}}
        if interval:
            p["interval"] = interval
        for i, t in enumerate(targets):
            t = dict(t)
            t["refId"] = chr(65 + i)
            t["datasource"] = self.ds
            p["targets"].append(t)
        self.d["panels"].append(p)
        self.x += w
        self.rowh = max(self.rowh, h)
        return p

    def write(self, path):
        with open(os.path.join(HERE, "dashboards", path), "w") as f:
            json.dump(self.d, f, indent=2, ensure_ascii=False)
            f.write("\n")


def sql(q, fmt="time_series"):
    return {"rawQuery": True, "editorMode": "code", "format": fmt, "rawSql": " ".join(q.split())}


def iql(q, fmt="time_series", alias=""):
    t = {"rawQuery": True, "query": " ".join(q.split()), "resultFormat": fmt}
    if alias:
        t["alias"] = alias
    return t


TS = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi"}}
STACKED = {"defaults": {"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 30}}, "overrides": []}
STAT = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value",
        "graphMode": "none"}
LOGIN = "'\\core\\event\\user_loggedin'"
FAILED = "'\\core\\event\\user_login_failed'"
ILOGIN = "'\\\\core\\\\event\\\\user_loggedin'"
IFAILED = "'\\\\core\\\\event\\\\user_login_failed'"

# ---------------------------------------------------------------------------------------------- PostgreSQL
PGDS = {"type": PG, "uid": "${datasource}"}
TABLE = text_var("table", "Log table", "logstore_tsdb_log")

d = Dashboard("logstore-tsdb-site-pg", "Moodle: site activity (PostgreSQL)",
              "Site-wide activity from the aggregates of the logstore_tsdb table (TimescaleDB's continuous aggregates, or "
              "the summaries of the plugin's summarise task on plain PostgreSQL).", PGDS,
              [ds_var("datasource", "Log database", PG), TABLE], ["postgresql"])
d.panel("stat", "Events", [sql('SELECT COALESCE(sum(events), 0) AS "events" FROM ${table}_daily_courses '
                               'WHERE $__timeFilter(day)', "table")], w=6, h=4, options=STAT)
d.panel("stat", "Active users", [sql('SELECT count(DISTINCT userid) AS "users" FROM ${table}_daily_users '
                                     'WHERE $__timeFilter(day) AND userid > 0', "table")], w=6, h=4, options=STAT)
d.panel("stat", "Courses with activity", [sql('SELECT count(DISTINCT courseid) AS "courses" FROM ${table}_daily_courses '
                                              'WHERE $__timeFilter(day) AND courseid > 1', "table")],
        w=6, h=4, options=STAT)
d.panel("stat", "Failed logins", [sql('SELECT COALESCE(sum(failed_logins), 0) AS "failed logins" '
                                      'FROM ${table}_daily_courses WHERE $__timeFilter(day)', "table")],
        w=6, h=4, options=STAT)
d.panel("timeseries", "Events per hour", [sql('SELECT bucket AS "time", sum(events) AS "events" FROM ${table}_hourly_site '
                                              'WHERE $__timeFilter(bucket) GROUP BY 1 ORDER BY 1')], options=TS)
d.panel("timeseries", "Active users per day", [sql('SELECT day AS "time", active_users AS "active users" '
                                                   'FROM ${table}_daily_active_users WHERE $__timeFilter(day) '
                                                   'AND active_users > 0 ORDER BY 1')], options=TS)
d.panel("timeseries", "Logins and failed logins per hour", [sql(
    'SELECT $__timeGroupAlias(bucket, \'1h\'), sum(logins) AS "logins", sum(failed_logins) AS "failed logins" '
    'FROM ${table}_hourly_site WHERE $__timeFilter(bucket) GROUP BY 1 HAVING sum(logins) + sum(failed_logins) > 0 '
    'ORDER BY 1')], options=TS)
d.panel("timeseries", "Teaching and participating per hour", [sql(
    'SELECT $__timeGroupAlias(bucket, \'1h\'), sum(teaching) AS "teaching", sum(participating) AS "participating", '
    'sum(other) AS "other" FROM ${table}_hourly_site WHERE $__timeFilter(bucket) GROUP BY 1 ORDER BY 1')], options=TS,
    fieldconfig=STACKED)
d.panel("barchart", "Most active courses", [sql(
    'SELECT courseid::text AS "course", sum(events) AS "events" FROM ${table}_daily_courses WHERE $__timeFilter(day) '
    'AND courseid > 1 GROUP BY courseid ORDER BY 2 DESC LIMIT 15', "table")],
    options={"orientation": "horizontal", "xField": "course"})
d.panel("table", "Most frequent events", [sql(
    'SELECT eventname AS "event", sum(events) AS "events" FROM ${table}_daily_events WHERE $__timeFilter(day) '
    'GROUP BY 1 ORDER BY 2 DESC LIMIT 20', "table")])
d.panel("piechart", "Events by origin", [sql(
    'SELECT origin AS "origin", sum(events) AS "events" FROM ${table}_daily_events WHERE $__timeFilter(day) '
    'GROUP BY 1 ORDER BY 2 DESC', "table")], options={"reduceOptions": {"values": True, "calcs": [], "fields": ""}, "pieType": "donut"})
d.write("postgres/site-activity.json")

d = Dashboard("logstore-tsdb-course-pg", "Moodle: course activity (PostgreSQL)",
              "Activity in the chosen courses: events, active users, activities, people (from the aggregates).", PGDS,
              [ds_var("datasource", "Log database", PG), TABLE,
               query_var("course", "Course", PGDS, "SELECT DISTINCT courseid FROM ${table}_daily_courses "
                                                   "WHERE courseid > 1 ORDER BY 1")], ["postgresql"])
d.panel("timeseries", "Events per hour", [sql(
    'SELECT bucket AS "time", courseid::text AS "metric", sum(events) AS "events" FROM ${table}_hourly '
    'WHERE $__timeFilter(bucket) AND courseid IN ($course) GROUP BY 1, 2 ORDER BY 1')], options=TS)
d.panel("timeseries", "Active users per day", [sql(
    'SELECT $__timeGroupAlias(day, \'1d\'), courseid::text AS "metric", active_users AS "active users" '
    'FROM ${table}_daily_courses WHERE $__timeFilter(day) AND courseid IN ($course) AND active_users > 0 ORDER BY 1')],
    options=TS)
d.panel("timeseries", "Teaching and participating per day", [sql(
    'SELECT $__timeGroupAlias(day, \'1d\'), sum(teaching) AS "teaching", sum(participating) AS "participating" '
    'FROM ${table}_daily_courses WHERE $__timeFilter(day) AND courseid IN ($course) GROUP BY 1 ORDER BY 1')], options=TS,
    fieldconfig=STACKED)
d.panel("table", "Most used activities", [sql(
    'SELECT contextinstanceid AS "course module", component AS "component", courseid AS "course", '
    'sum(events) AS "events" FROM ${table}_activity WHERE $__timeFilter(day) AND courseid IN ($course) '
    'AND contextlevel = 70 GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 20', "table")])
d.panel("table", "Most active users", [sql(
    'SELECT userid AS "user", sum(events) AS "events", sum(participating) AS "participating", '
    'max(day) AS "last active day" FROM ${table}_daily WHERE $__timeFilter(day) AND courseid IN ($course) '
    'AND userid > 0 GROUP BY 1 ORDER BY 2 DESC LIMIT 20', "table")])
d.panel("table", "Weekly engagement", [sql(
    'SELECT week AS "week", courseid AS "course", active_users AS "active users", events AS "events" '
    'FROM ${table}_weekly_courses WHERE $__timeFilter(week) AND courseid IN ($course) ORDER BY 1, 2', "table")])
d.write("postgres/course-activity.json")

d = Dashboard("logstore-tsdb-user-pg", "Moodle: user activity (PostgreSQL)",
              "Who did what, when: the events of one user (Moodle user id), read from the events themselves.", PGDS,
              [ds_var("datasource", "Log database", PG), TABLE, text_var("user", "User id", "2")], ["postgresql"])
d.panel("timeseries", "Events per hour", [sql(
    'SELECT $__timeGroupAlias("time", \'1h\'), count(*) AS "events" FROM ${table} WHERE $__timeFilter("time") '
    'AND userid = $user GROUP BY 1 ORDER BY 1')], options=TS)
d.panel("table", "Courses", [sql(
    'SELECT courseid AS "course", count(*) AS "events", min("time") AS "first", max("time") AS "last" FROM ${table} '
    'WHERE $__timeFilter("time") AND userid = $user GROUP BY 1 ORDER BY 2 DESC', "table")])
d.panel("table", "Who did what, when", [sql(
    'SELECT "time", eventname AS "event", component, action, target, courseid AS "course", '
    'contextinstanceid AS "instance", relateduserid AS "related user", origin, ip, realuserid AS "logged in as by" '
    'FROM ${table} WHERE $__timeFilter("time") AND userid = $user ORDER BY "time" DESC LIMIT 1000', "table")], w=24, h=12)
d.panel("table", "Done to this user by others", [sql(
    'SELECT "time", userid AS "by user", eventname AS "event", courseid AS "course" FROM ${table} '
    'WHERE $__timeFilter("time") AND relateduserid = $user ORDER BY "time" DESC LIMIT 200', "table")], w=24)
d.write("postgres/user-activity.json")

MDS = {"type": PG, "uid": "${moodledb}"}
d = Dashboard("logstore-tsdb-health", "Moodle: log store health",
              "The store's own counters, reported by every PHP process into Moodle's database "
              "(logstore_tsdb_metrics, logstore_tsdb_workers).", MDS,
              [ds_var("moodledb", "Moodle database", PG), text_var("prefix", "Table prefix", "mdl_")], ["health"])
d.panel("timeseries", "Events per second", [sql(
    'SELECT to_timestamp(timeminute) AS "time", accepted / 60.0 AS "accepted/s", written / 60.0 AS "written/s" '
    'FROM ${prefix}logstore_tsdb_metrics WHERE $__unixEpochFilter(timeminute) ORDER BY 1')], options=TS)
d.panel("timeseries", "Failed, dropped, retried per minute", [sql(
    'SELECT to_timestamp(timeminute) AS "time", failed AS "failed", dropped AS "dropped", retried AS "retried" '
    'FROM ${prefix}logstore_tsdb_metrics WHERE $__unixEpochFilter(timeminute) ORDER BY 1')], options=TS)
d.panel("stat", "Failed", [sql('SELECT COALESCE(sum(failed), 0) AS "failed" FROM ${prefix}logstore_tsdb_metrics '
                               'WHERE $__unixEpochFilter(timeminute)', "table")], w=6, h=4, options=STAT)
d.panel("stat", "Dropped", [sql('SELECT COALESCE(sum(dropped), 0) AS "dropped" FROM ${prefix}logstore_tsdb_metrics '
                                'WHERE $__unixEpochFilter(timeminute)', "table")], w=6, h=4, options=STAT)
d.panel("stat", "Pending in workers", [sql('SELECT COALESCE(sum(pending), 0) AS "pending" '
                                           'FROM ${prefix}logstore_tsdb_workers', "table")], w=6, h=4, options=STAT)
d.panel("stat", "Workers reporting", [sql('SELECT count(*) AS "workers" FROM ${prefix}logstore_tsdb_workers '
                                          'WHERE $__unixEpochFilter(timereported)', "table")], w=6, h=4, options=STAT)
d.panel("table", "PHP processes (last report of each)", [sql(
    'SELECT hostname, pid, backend, extversion AS "version", accepted, written, failed, dropped, pending, '
    'queuedbytes AS "queued bytes", to_timestamp(lastsuccessat) AS "last success", lasterror AS "last error", '
    'to_timestamp(timereported) AS "reported" FROM ${prefix}logstore_tsdb_workers ORDER BY timereported DESC', "table")],
    w=24)
d.write("postgres/system-health.json")

# ---------------------------------------------------------------------------------------------- InfluxDB (InfluxQL)
IDS = {"type": INFLUX, "uid": "${datasource}"}
RP = text_var("rollup", "Rollup retention policy", "rollup_5y", hide=2)

d = Dashboard("logstore-tsdb-site-influx", "Moodle: site activity (InfluxDB)",
              "Site-wide activity from the moodle_events measurement and the rollups of the shipped continuous queries.",
              IDS, [ds_var("datasource", "Log database", INFLUX), RP], ["influxdb"])
d.panel("stat", "Events", [iql('SELECT count("anonymous") AS "events" FROM "moodle_events" WHERE $timeFilter')],
        w=6, h=4, options=STAT)
d.panel("stat", "Active users", [iql('SELECT count(distinct("userid")) AS "users" FROM "moodle_events" '
                                     'WHERE $timeFilter AND "userid" > 0')], w=6, h=4, options=STAT)
d.panel("stat", "Failed logins", [iql('SELECT count("anonymous") AS "failed logins" FROM "moodle_events" '
                                      'WHERE $timeFilter AND "eventname" = ' + IFAILED)], w=6, h=4, options=STAT)
d.panel("stat", "Events in the rollup", [iql('SELECT sum("events") AS "events" FROM "$rollup"."moodle_events_hourly" '
                                             'WHERE $timeFilter')], w=6, h=4, options=STAT)
d.panel("timeseries", "Events per hour", [iql('SELECT sum("events") AS "events" FROM "$rollup"."moodle_events_hourly" '
                                              'WHERE $timeFilter GROUP BY time(1h) fill(0)')], options=TS)
d.panel("timeseries", "Active users per day", [iql(
    'SELECT "active_users" AS "active users" FROM "$rollup"."moodle_active_users_daily" WHERE $timeFilter')], options=TS)
d.panel("timeseries", "Logins and failed logins", [iql(
    'SELECT count("anonymous") AS "events" FROM "moodle_events" WHERE $timeFilter AND ("eventname" = ' + ILOGIN
    + ' OR "eventname" = ' + IFAILED + ') GROUP BY time($__interval), "eventname" fill(0)',
    alias="$tag_eventname")], options=TS, interval="1h")
d.panel("timeseries", "Events by education level (0 other, 1 teaching, 2 participating)", [iql(
    'SELECT sum("events") AS "events" FROM "$rollup"."moodle_events_hourly" WHERE $timeFilter '
    'GROUP BY time($__interval), "edulevel" fill(0)', alias="edulevel $tag_edulevel")], options=TS, fieldconfig=STACKED,
    interval="1h")
d.panel("table", "Most active courses", [iql(
    'SELECT top("events", "courseid", 15) AS "events" FROM (SELECT sum("events") AS "events" '
    'FROM "$rollup"."moodle_events_hourly" WHERE $timeFilter GROUP BY "courseid")', "table")])
d.panel("table", "Events by origin", [iql(
    'SELECT sum("events") AS "events" FROM "$rollup"."moodle_events_hourly" WHERE $timeFilter GROUP BY "origin"',
    "table")])
d.write("influxdb/site-activity.json")

d = Dashboard("logstore-tsdb-course-influx", "Moodle: course activity (InfluxDB)",
              "Activity in the chosen courses.", IDS,
              [ds_var("datasource", "Log database", INFLUX), RP,
               query_var("course", "Course", IDS, 'SHOW TAG VALUES FROM "moodle_events" WITH KEY = "courseid"')],
              ["influxdb"])
d.panel("timeseries", "Events per hour", [iql(
    'SELECT sum("events") AS "events" FROM "$rollup"."moodle_events_hourly" WHERE $timeFilter '
    'AND "courseid" =~ /^$course$/ GROUP BY time($__interval), "courseid" fill(0)', alias="course $tag_courseid")],
    options=TS, interval="1h")
d.panel("timeseries", "Active users per day", [iql(
    'SELECT count(distinct("userid")) AS "active users" FROM "moodle_events" WHERE $timeFilter '
    'AND "courseid" =~ /^$course$/ AND "userid" > 0 GROUP BY time(1d), "courseid" fill(none)',
    alias="course $tag_courseid")], options=TS)
d.panel("timeseries", "Teaching and participating per day", [iql(
    'SELECT sum("events") AS "events" FROM "$rollup"."moodle_events_hourly" WHERE $timeFilter '
    'AND "courseid" =~ /^$course$/ AND ("edulevel" = \'1\' OR "edulevel" = \'2\') GROUP BY time(1d), "edulevel" fill(0)',
    alias="edulevel $tag_edulevel")], options=TS, fieldconfig=STACKED)
d.panel("table", "Most used activities (context ids)", [iql(
    'SELECT top("events", "contextid", 20) AS "events" FROM (SELECT count("anonymous") AS "events" FROM "moodle_events" '
    'WHERE $timeFilter AND "courseid" =~ /^$course$/ AND "contextlevel" = \'70\' GROUP BY "contextid")', "table")])
d.write("influxdb/course-activity.json")

d = Dashboard("logstore-tsdb-user-influx", "Moodle: user activity (InfluxDB)",
              "The events of one user. With pseudonymisation on, enter the user's pseudonym: "
              "SELECT pseudoid FROM mdl_logstore_tsdb_pseudonym WHERE userid = ...", IDS,
              [ds_var("datasource", "Log database", INFLUX), text_var("userkey", "User id or pseudonym", "2")],
              ["influxdb"])
d.panel("timeseries", "Events per hour", [iql(
    'SELECT count("anonymous") AS "events" FROM "moodle_events" WHERE $timeFilter AND "userid" = $userkey '
    'GROUP BY time(1h) fill(none)')], options=TS)
d.panel("table", "Courses", [iql(
    'SELECT count("anonymous") AS "events" FROM "moodle_events" WHERE $timeFilter AND "userid" = $userkey '
    'GROUP BY "courseid"', "table")])
d.panel("table", "Who did what, when", [iql(
    'SELECT "eventname", "component", "action", "target", "courseid", "contextinstanceid", "origin", "ip" '
    'FROM "moodle_events" WHERE $timeFilter AND "userid" = $userkey ORDER BY time DESC LIMIT 1000', "table")],
    w=24, h=12)
d.write("influxdb/user-activity.json")
