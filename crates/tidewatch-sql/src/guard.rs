//! The read-only rule, checked on the parsed statement before anything is planned:
//! exactly one statement, and it is a query (`SELECT`, `WITH`, `VALUES`) or `EXPLAIN` of
//! one. Nested statements (`WITH x AS (INSERT ...)`) and `SELECT ... INTO` are refused too.
//!
//! This is the first of two locks: the planned query is also verified against
//! DataFusion's `SQLOptions` with DDL, DML and statements disallowed.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;

use crate::error::Error;

const ALLOWED: &str = "only SELECT, WITH and EXPLAIN are allowed";

/// Returns the one statement of `statements` if it only reads.
pub(crate) fn single_read_only_statement(
    mut statements: VecDeque<DfStatement>,
) -> Result<DfStatement, Error> {
    if statements.len() > 1 {
        return Err(Error::Rejected(format!(
            "{ALLOWED}, one statement per request; got {} statements",
            statements.len()
        )));
    }
    let statement = statements
        .pop_front()
        .ok_or_else(|| Error::Rejected(format!("{ALLOWED}; got no statement")))?;
    check(&statement)?;
    Ok(statement)
}

fn check(statement: &DfStatement) -> Result<(), Error> {
    match statement {
        DfStatement::Statement(statement) => check_sql(statement),
        DfStatement::Explain(explain) => check(&explain.statement),
        DfStatement::CreateExternalTable(_) => Err(rejected("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => Err(rejected("COPY")),
        DfStatement::Reset(_) => Err(rejected("RESET")),
    }
}

fn check_sql(statement: &Statement) -> Result<(), Error> {
    match statement {
        Statement::Query(_) => {
            let mut guard = NestedWrites;
            match statement.visit(&mut guard) {
                ControlFlow::Continue(()) => Ok(()),
                ControlFlow::Break(what) => Err(rejected(&what)),
            }
        }
        Statement::Explain { statement, .. } => check_sql(statement),
        other => Err(rejected(&statement_name(other))),
    }
}

fn rejected(what: &str) -> Error {
    Error::Rejected(format!("{ALLOWED}; got {what}"))
}

/// Finds statements other than queries, and `SELECT ... INTO`, anywhere in a query.
struct NestedWrites;

impl Visitor for NestedWrites {
    type Break = String;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<String> {
        match statement {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(statement_name(other)),
        }
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        if selects_into(&query.body) {
            ControlFlow::Break("SELECT INTO".to_owned())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn selects_into(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_some(),
        SetExpr::SetOperation { left, right, .. } => selects_into(left) || selects_into(right),
        _ => false,
    }
}

/// The leading keywords of a statement as SQL prints it: `CREATE TABLE`, `INSERT INTO`,
/// `DROP VIEW`, `SET`.
fn statement_name(statement: &Statement) -> String {
    let text = statement.to_string();
    let keywords: Vec<&str> = text
        .split_whitespace()
        .take_while(|word| {
            word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && ALL_KEYWORDS.contains(word)
                && !matches!(*word, "INTO" | "FROM")
        })
        .take(3)
        .collect();
    if keywords.is_empty() {
        "a statement that is not a query".to_owned()
    } else {
        keywords.join(" ")
    }
}
