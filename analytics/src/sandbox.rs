//! The SQL sandbox: exactly one read-only statement.
//!
//! Checked twice: here on the parsed statement (clear messages, catches DataFusion's own
//! `COPY` and `CREATE EXTERNAL TABLE`), and on the plan with DataFusion's `SQLOptions`
//! (catches anything that plans to DDL, DML or a session statement, e.g. `SELECT … INTO`).

use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::{QueryError, Result};

/// What the sandbox allows, in words, for error messages.
const ALLOWED: &str =
    "only read-only queries (SELECT, WITH, VALUES, SHOW, DESCRIBE, EXPLAIN) are allowed";

/// Parses `sql` into exactly one statement and refuses anything that is not read-only.
///
/// # Errors
/// [`QueryError::Invalid`] on a syntax error or empty input, [`QueryError::Refused`] for several
/// statements or a statement that writes, changes settings or touches files.
pub(crate) fn parse_read_only(sql: &str) -> Result<DFStatement> {
    let mut statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
        .map_err(|e| QueryError::Invalid(e.to_string()))?;
    if statements.len() > 1 {
        return Err(QueryError::Refused(format!(
            "exactly one statement is allowed per request, found {}",
            statements.len()
        )));
    }
    let statement = statements
        .pop_front()
        .ok_or_else(|| QueryError::Invalid("the query is empty".into()))?;
    check(&statement)?;
    Ok(statement)
}

/// Refuses plans that would write, define objects or change the session.
///
/// # Errors
/// [`QueryError::Refused`] naming what the plan would do.
pub(crate) fn verify_plan(plan: &LogicalPlan) -> Result<()> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|e| QueryError::Refused(format!("{ALLOWED}: {}", e.strip_backtrace())))
}

fn check(statement: &DFStatement) -> Result<()> {
    match statement {
        DFStatement::Statement(s) => check_sql(s),
        DFStatement::Explain(e) => check(&e.statement),
        DFStatement::CreateExternalTable(_) => Err(QueryError::Refused(format!(
            "CREATE EXTERNAL TABLE is not allowed: queries cannot read or register files; {ALLOWED}"
        ))),
        DFStatement::CopyTo(_) => Err(QueryError::Refused(format!(
            "COPY is not allowed: queries cannot write files; {ALLOWED}"
        ))),
        DFStatement::Reset(_) => Err(QueryError::Refused(format!(
            "RESET is not allowed: settings are fixed; {ALLOWED}"
        ))),
    }
}

fn check_sql(statement: &Statement) -> Result<()> {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCreate { .. }
        | Statement::ExplainTable { .. } => Ok(()),
        Statement::Explain { statement, .. } => check_sql(statement),
        other => Err(QueryError::Refused(format!(
            "{} is not allowed; {ALLOWED}",
            leading_keywords(&other.to_string())
        ))),
    }
}

/// The first two words of a statement (`DROP TABLE`, `INSERT INTO`), for messages.
fn leading_keywords(sql: &str) -> String {
    sql.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read-only statements parse; everything else is refused with a reason.
    #[test]
    fn classifies_statements() {
        for ok in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "SHOW TABLES",
            "SHOW COLUMNS FROM metrics",
            "DESCRIBE metrics",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
        ] {
            assert!(parse_read_only(ok).is_ok(), "{ok} should be allowed");
        }
        for (bad, needle) in [
            (
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("INSERT INTO metrics VALUES (1)", "INSERT INTO"),
            ("DROP TABLE metrics", "DROP TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("SELECT 1; SELECT 2", "exactly one statement"),
        ] {
            match parse_read_only(bad) {
                Err(QueryError::Refused(msg)) => assert!(msg.contains(needle), "{bad}: {msg}"),
                other => panic!("{bad}: expected Refused, got {other:?}"),
            }
        }
        assert!(matches!(
            parse_read_only("SELEC 1"),
            Err(QueryError::Invalid(_))
        ));
        assert!(matches!(parse_read_only("  "), Err(QueryError::Invalid(_))));
    }
}
