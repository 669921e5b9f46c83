//! What the events table must be for the sink to write into it, asked of the catalog: its kind (a
//! TimescaleDB hypertable, or a table partitioned by day), its columns and their types, and the rights of
//! the role the sink logs in as. A problem is one message that names the table, the column or the
//! privilege, and the statement that fixes it. Checked on every connection (a few catalog reads) and
//! again when a write is refused as a whole, so that a table changed under a running writer is named
//! too instead of every event being refused one by one.

use super::copy::{Kind, COLUMNS};
use super::schema::{quote_ident, relation_exists, Layout, Names};
use super::{describe, Error};
use crate::sink::SinkError;
use ::postgres::Client;

/// The first thing that stops the sink writing into the table, in words; None when it can write.
pub fn table(c: &mut Client, n: &Names, layout: &Layout, chunk_hours: i64) -> Result<Option<String>, Error> {
    if let Some(p) = kind(c, n, layout, chunk_hours)? {
        return Ok(Some(p));
    }
    let cols = c.query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
         a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' \
         FROM pg_attribute a WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
        &[&n.main()],
    )?;
    let cols: Vec<Col> =
        cols.iter().map(|r| Col { name: r.get(0), ty: r.get(1), not_null: r.get(2), filled: r.get(3) }).collect();
    if let Some(p) = columns(n, &cols) {
        return Ok(Some(p));
    }
    privileges(c, n, cols.iter().any(|c| c.name == "id"))
}

/// The error for DDL the role may not run (42501) while creating missing objects; any other error as is.
pub fn cannot_create(c: &mut Client, n: &Names, e: Error) -> Error {
    let denied = matches!(&e, Error::Pg(pg) if pg.code() == Some(&::postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
    if !denied {
        return e;
    }
    let who = c.query_one(
        "SELECT current_user::text, current_database()::text, \
         EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
        &[&n.schema],
    );
    let Ok(who) = who else { return e };
    let (me, db, schema_exists): (String, String, bool) = (who.get(0), who.get(1), who.get(2));
    let main_missing = !relation_exists(c, n, &n.table).unwrap_or(true);
    let what = if main_missing {
        format!("{}, which does not exist (never made, dropped, or restored without it)", n.main())
    } else {
        format!("the sink's record {} or ledger {}, which is missing", n.q(&n.meta()), n.q(&n.ledger()))
    };
    let grant = if schema_exists {
        format!("GRANT CREATE ON SCHEMA {} TO {}", quote_ident(&n.schema), quote_ident(&me))
    } else {
        format!("GRANT CREATE ON DATABASE {} TO {}", quote_ident(&db), quote_ident(&me))
    };
    SinkError::Config(format!(
        "user: \"{me}\" may not create {what} ({}); create it as the owner (run the extension once with the owner's \
         credentials, docs/postgres.md) or {grant}",
        describe(&e)
    ))
    .into()
}

fn kind(c: &mut Client, n: &Names, layout: &Layout, chunk_hours: i64) -> Result<Option<String>, Error> {
    let main = n.main();
    let relkind: Option<String> = c
        .query_opt(
            "SELECT c.relkind::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace \
             WHERE s.nspname = $1 AND c.relname = $2",
            &[&n.schema, &n.table],
        )?
        .map(|r| r.get(0));
    let not_a_table = match relkind.as_deref() {
        None => return Ok(Some(format!("table: {main} does not exist"))),
        Some("r" | "p") => None,
        Some("v") => Some("a view"),
        Some("m") => Some("a materialized view"),
        Some("f") => Some("a foreign table"),
        Some(_) => Some("not a table"),
    };
    if let Some(what) = not_a_table {
        return Ok(Some(format!(
            "table: {main} is {what}, not a table the sink can write into: rename it away (the sink then creates its \
             table) or set table to another name"
        )));
    }
    let meta = n.q(&n.meta());
    Ok(match layout {
        Layout::Native if relkind.as_deref() != Some("p") => Some(format!(
            "table: {main} is a plain table, but the sink writes one partitioned by day ({meta} says native) and \
             cannot add its daily partitions to it: rename it away, let the sink create its table again, then copy \
             the rows back with INSERT ... SELECT"
        )),
        Layout::Native => None,
        Layout::Timescale { .. } => {
            let hypertable: bool = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables \
                     WHERE hypertable_schema = $1 AND hypertable_name = $2)",
                    &[&n.schema, &n.table],
                )?
                .get(0);
            (!hypertable).then(|| {
                format!(
                    "table: {main} is not a TimescaleDB hypertable any more (turned back into a plain table, or \
                     restored without timescaledb_pre_restore()), but {meta} says it is one: make it one again as its \
                     owner with SELECT create_hypertable('{main}', by_range('time', INTERVAL '{chunk_hours} hours'), \
                     create_default_indexes => false, migrate_data => true); the sink then adds compression, \
                     retention and the continuous aggregates again"
                )
            })
        }
    })
}

/// One column of the table as the catalog describes it.
struct Col {
    name: String,
    /// `format_type()`: `character varying(255)`, `bigint`, ...
    ty: String,
    not_null: bool,
    /// Has a default, or is an identity or generated column.
    filled: bool,
}

fn columns(n: &Names, cols: &[Col]) -> Option<String> {
    let main = n.main();
    let mut problems = Vec::new();
    for want in &COLUMNS {
        let name = quote_ident(want.name);
        let sql = want.sql.trim_end_matches(" NOT NULL");
        match cols.iter().find(|c| c.name == want.name) {
            None => problems.push(format!("column {name} is missing (ALTER TABLE {main} ADD COLUMN {name} {sql})")),
            Some(c) if !accepts(want.kind, &c.ty) => problems.push(format!(
                "column {name} is {}, the sink writes {sql} (ALTER TABLE {main} ALTER COLUMN {name} TYPE {sql})",
                c.ty
            )),
            Some(_) => {}
        }
    }
    // A column the sink does not write must fill itself.
    for c in cols.iter().filter(|c| c.not_null && !c.filled && COLUMNS.iter().all(|w| w.name != c.name)) {
        let name = quote_ident(&c.name);
        problems.push(if c.name == "id" {
            format!("column \"id\" has no default any more (ALTER TABLE {main} ALTER COLUMN \"id\" ADD GENERATED BY DEFAULT AS IDENTITY)")
        } else {
            format!(
                "column {name} is NOT NULL without a default and the sink does not fill it (ALTER TABLE {main} ALTER \
                 COLUMN {name} DROP NOT NULL, or give it a default)"
            )
        });
    }
    (!problems.is_empty())
        .then(|| format!("table: {main} cannot take events: {}; run that as the table's owner", problems.join("; ")))
}

/// Whether a column of type `ty` (as `format_type()` prints it) takes the sink's binary COPY of `kind`
/// losslessly: the type the sink creates, or a wider text type.
fn accepts(kind: Kind, ty: &str) -> bool {
    match kind {
        Kind::Text(_, n) => {
            let width = ty.strip_prefix("character varying(").and_then(|r| r.strip_suffix(')'));
            ty == "text"
                || ty == "character varying"
                || width.and_then(|w| w.parse::<usize>().ok()).is_some_and(|w| w >= n)
        }
        Kind::Int8(_) | Kind::TimeCreated | Kind::Producer | Kind::Seq => ty == "bigint",
        Kind::Int2(_) => ty == "smallint",
        Kind::Json => ty == "jsonb",
        Kind::Time => ty == "timestamp with time zone",
    }
}

/// The rights every write needs (docs/postgres.md, "To run without DDL rights"), with the GRANTs that give
/// the missing ones.
fn privileges(c: &mut Client, n: &Names, has_id: bool) -> Result<Option<String>, Error> {
    let (main, ledger, meta) = (n.main(), n.q(&n.ledger()), n.q(&n.meta()));
    let cols: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    let r = c.query_one(
        "SELECT current_user::text, has_schema_privilege($1, 'USAGE'), \
         (SELECT coalesce(bool_and(has_column_privilege($2::text::regclass, col, 'INSERT')), true) \
          FROM unnest($3::text[]) col), \
         has_table_privilege($2, 'SELECT'), \
         has_table_privilege($4, 'SELECT'), has_table_privilege($4, 'INSERT'), \
         has_table_privilege($4, 'UPDATE'), has_table_privilege($4, 'DELETE'), has_table_privilege($5, 'SELECT')",
        &[&n.schema, &main, &cols, &ledger, &meta],
    )?;
    let me: String = r.get(0);
    // (object kind for GRANT, object, the rights it lacks)
    let lacking = |privs: &[(usize, &'static str)]| -> Vec<&'static str> {
        privs.iter().filter(|(i, _)| !r.get::<_, bool>(*i)).map(|p| p.1).collect()
    };
    let mut wants: Vec<(&str, String, Vec<&str>)> = vec![
        ("SCHEMA", quote_ident(&n.schema), lacking(&[(1, "USAGE")])),
        ("", main.clone(), lacking(&[(2, "INSERT"), (3, "SELECT")])),
        ("", ledger, lacking(&[(4, "SELECT"), (5, "INSERT"), (6, "UPDATE"), (7, "DELETE")])),
        ("", meta, lacking(&[(8, "SELECT")])),
    ];
    if has_id {
        let seq = c.query_one(
            "SELECT s, has_sequence_privilege(s, 'USAGE') FROM pg_get_serial_sequence($1, 'id') s WHERE s IS NOT NULL",
            &[&main],
        );
        if let Ok(r) = seq {
            if !r.get::<_, bool>(1) {
                wants.push(("SEQUENCE", r.get(0), vec!["USAGE"]));
            }
        }
    }
    wants.retain(|(_, _, privs)| !privs.is_empty());
    if wants.is_empty() {
        return Ok(None);
    }
    let on = |kind: &str, object: &str| if kind.is_empty() { object.to_string() } else { format!("{kind} {object}") };
    let lacks: Vec<String> =
        wants.iter().map(|(k, o, p)| format!("{} on {}", p.join(", "), on(&k.to_lowercase(), o))).collect();
    let grants: Vec<String> = wants
        .iter()
        .map(|(k, o, p)| format!("GRANT {} ON {} TO {}", p.join(", "), on(k, o), quote_ident(&me)))
        .collect();
    Ok(Some(format!(
        "user: \"{me}\" may not write events into {main}: it lacks {}; as the owner run: {}",
        lacks.join(", "),
        grants.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{IntField, StrField};

    #[test]
    fn accepted_column_types() {
        let text = Kind::Text(StrField::Ip, 45);
        for ok in ["character varying(45)", "character varying(255)", "character varying", "text"] {
            assert!(accepts(text, ok), "{ok}");
        }
        for bad in ["character varying(44)", "inet", "character(45)", "bytea"] {
            assert!(!accepts(text, bad), "{bad}");
        }
        assert!(accepts(Kind::Int8(IntField::UserId), "bigint"));
        assert!(!accepts(Kind::Int8(IntField::UserId), "integer"));
        assert!(!accepts(Kind::Int2(IntField::EduLevel), "integer"));
        assert!(!accepts(Kind::Json, "json"));
        assert!(!accepts(Kind::Time, "timestamp without time zone"));
        // Every column the sink creates is accepted as created.
        for c in &COLUMNS {
            let created = c
                .sql
                .trim_end_matches(" NOT NULL")
                .replace("varchar", "character varying")
                .replace("timestamptz", "timestamp with time zone");
            assert!(accepts(c.kind, &created), "{}", c.name);
        }
    }
}
