//! The one audited way to write SQL text with values in it. [`sql!`](crate::sql) formats only
//! [`SqlArg`]s: static text, numbers, other [`Sql`] fragments, time windows, stored enum
//! values, and strings made into literals by [`lit`] (the one quoting function). A `String`
//! or borrowed `&str` is not an `SqlArg`, so input cannot reach a query unescaped; the suite
//! checks that no SQL is built with `format!` outside this module.

use std::fmt::{self, Write as _};

/// A fragment of SQL text built only from static text and escaped values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Sql(String);

impl Sql {
    /// The SQL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when there is no text.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends `part`.
    pub fn push(&mut self, part: impl SqlArg) {
        // Writing into a String cannot fail.
        let _ = write!(self.0, "{}", Rendered(&part));
    }

    /// `parts` joined by `separator`.
    pub fn join(parts: impl IntoIterator<Item = Sql>, separator: &'static str) -> Sql {
        let mut out = Sql::default();
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                out.0.push_str(separator);
            }
            out.0.push_str(&part.0);
        }
        out
    }

    /// What [`sql!`](crate::sql) produced; not for other callers.
    #[doc(hidden)]
    pub fn __formatted(text: String) -> Sql {
        Sql(text)
    }
}

impl From<&'static str> for Sql {
    fn from(text: &'static str) -> Sql {
        Sql(text.to_string())
    }
}

/// Reading the text is always safe; only building it is guarded.
impl std::ops::Deref for Sql {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value that may be written into SQL text as it renders itself.
pub trait SqlArg {
    /// Writes the value's SQL form.
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// How [`sql!`](crate::sql) hands an [`SqlArg`] to `format!`; not for other callers.
#[doc(hidden)]
pub struct Rendered<'a, T: SqlArg + ?Sized>(pub &'a T);

impl<T: SqlArg + ?Sized> fmt::Display for Rendered<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_sql(f)
    }
}

impl SqlArg for Sql {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SqlArg for &Sql {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text in the program itself (a column list, a constant expression).
impl SqlArg for &'static str {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

macro_rules! integer_args {
    ($($t:ty),*) => {$(
        impl SqlArg for $t {
            fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self}")
            }
        }
    )*};
}
integer_args!(i32, i64, u32, u64, u128, usize);

impl SqlArg for f64 {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_finite() {
            // `{:?}` keeps a decimal point, so the literal is a double, not an integer.
            write!(f, "{self:?}")
        } else {
            write!(f, "CAST('{self}' AS DOUBLE)")
        }
    }
}

impl SqlArg for bool {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self { "TRUE" } else { "FALSE" })
    }
}

/// `s` as a SQL string literal: the one quoting function.
pub fn lit(s: &str) -> Sql {
    Sql(format!("'{}'", s.replace('\'', "''")))
}

/// `items` as a comma-separated list of string literals, for `IN (…)`.
pub fn list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Sql {
    Sql::join(items.into_iter().map(|i| lit(i.as_ref())), ", ")
}

/// The value of attribute `key` in the `attributes` map column.
pub fn attribute(key: &str) -> Sql {
    crate::sql!("attributes[{}]", lit(key))
}

/// `column = 'value'`.
pub fn eq(column: impl SqlArg, value: &str) -> Sql {
    crate::sql!("{} = {}", column, lit(value))
}

/// `conditions` joined by `AND` (`TRUE` when there are none).
pub fn all(conditions: impl IntoIterator<Item = Sql>) -> Sql {
    let joined = Sql::join(conditions, " AND ");
    if joined.is_empty() {
        Sql::from("TRUE")
    } else {
        joined
    }
}

/// SQL text with [`SqlArg`] values in it: `sql!("… WHERE {} AND name = {}", window.sql(),
/// lit(name))`. Arguments are positional only; the suite refuses `{name}` captures, which
/// would bypass the argument check.
#[macro_export]
macro_rules! sql {
    ($text:literal $(, $arg:expr)* $(,)?) => {
        $crate::query::Sql::__formatted(::std::format!(
            $text $(, $crate::query::sql::Rendered(&$arg))*
        ))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(lit("it's").as_str(), "'it''s'");
        assert_eq!(lit("' OR 1=1 --").as_str(), "''' OR 1=1 --'");
        assert_eq!(list(["a", "b'c"]).as_str(), "'a', 'b''c'");
        assert_eq!(list(Vec::<String>::new()).as_str(), "");
        assert_eq!(attribute("k'").as_str(), "attributes['k''']");
        assert_eq!(
            all([eq("a", "b"), eq(attribute("c"), "d")]).as_str(),
            "a = 'b' AND attributes['c'] = 'd'"
        );
        assert_eq!(all([]).as_str(), "TRUE");
    }

    #[test]
    fn arguments_render_as_sql() {
        let name = String::from("x'y");
        let q = crate::sql!(
            "SELECT {} FROM t WHERE n = {} AND s = {} AND f >= {} AND b = {} LIMIT {}",
            "a, b",
            -3i64,
            lit(&name),
            0.5,
            true,
            10usize
        );
        assert_eq!(
            q.as_str(),
            "SELECT a, b FROM t WHERE n = -3 AND s = 'x''y' AND f >= 0.5 AND b = TRUE LIMIT 10"
        );
        assert_eq!(crate::sql!("{}", 2.0).as_str(), "2.0");
        assert_eq!(
            crate::sql!("{}", f64::NAN).as_str(),
            "CAST('NaN' AS DOUBLE)"
        );
        let mut more = Sql::from("a");
        more.push(crate::sql!(" AND b = {}", lit("c")));
        assert_eq!(more.as_str(), "a AND b = 'c'");
    }
}
