//! SQL whose text depends on the request (optional filters, a cursor, a number of
//! rows): built once as text with `$1, $2, …` placeholders plus the values they bind,
//! the same on both backends, then run inside [`with_pool!`](super::with_pool) with
//! `sqlx::query_with` (or `query_as_with`, `query_scalar_with`) and [`Sql::arguments`].
//!
//! ```ignore
//! let mut q = Sql::new("SELECT id FROM client_keys WHERE 1 = 1");
//! if let Some(owner) = owner {
//!     q.push(" AND owner = ").push_bind(owner);
//! }
//! let ids: Vec<String> = with_pool!(self, pool => {
//!     sqlx::query_scalar_with(q.text(), q.arguments(pool)?)
//!         .fetch_all(pool)
//!         .await?
//! });
//! ```

use sqlx::{Arguments, Database, Encode, Pool, Type};

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Some(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(Some(v.to_owned()))
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::Text(v.map(str::to_owned))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}

/// SQL text with `$N` placeholders and the values they bind, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// A query starting with `text` (which binds nothing).
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            values: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: impl AsRef<str>) -> &mut Sql {
        self.text.push_str(text.as_ref());
        self
    }

    /// Appends the next placeholder (`$N`) and the value it binds.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Sql {
        self.values.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.values.len().to_string());
        self
    }

    /// Appends `(…), (…)` with one tuple of placeholders per item, as
    /// `bind` pushes them (for a multi-row `INSERT … VALUES`).
    pub fn push_values<T>(&mut self, items: &[T], mut bind: impl FnMut(&mut Tuple<'_>, &T)) {
        for (i, item) in items.iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            let mut tuple = Tuple {
                sql: self,
                first: true,
            };
            bind(&mut tuple, item);
            self.push(")");
        }
    }

    /// The SQL text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The values, in placeholder order (for a driver other than sqlx's).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The values, as arguments for `pool`'s backend (the pool only names it), for
    /// `sqlx::query_with` and its `_as` and `_scalar` forms.
    pub fn arguments<'q, DB>(&'q self, _pool: &Pool<DB>) -> Result<DB::Arguments<'q>, sqlx::Error>
    where
        DB: Database,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
        &'q [u8]: Encode<'q, DB> + Type<DB>,
    {
        let mut args = DB::Arguments::<'q>::default();
        for value in &self.values {
            match value {
                Value::Text(text) => args.add(text.as_deref()),
                Value::Int(n) => args.add(*n),
                Value::Bytes(bytes) => args.add(bytes.as_slice()),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

/// The values of one row of [`Sql::push_values`].
pub(crate) struct Tuple<'a> {
    sql: &'a mut Sql,
    first: bool,
}

impl Tuple<'_> {
    /// Appends the row's next value.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        if !self.first {
            self.sql.push(", ");
        }
        self.first = false;
        self.sql.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let mut q = Sql::new("SELECT * FROM t WHERE 1 = 1");
        q.push(" AND a = ").push_bind("x");
        q.push(" AND b < ").push_bind(7_i64);
        q.push(" VALUES ");
        q.push_values(&[1_i64, 2], |t, n| {
            t.bind(*n).bind(None::<&str>);
        });
        assert_eq!(
            q.text(),
            "SELECT * FROM t WHERE 1 = 1 AND a = $1 AND b < $2 VALUES ($3, $4), ($5, $6)"
        );
        assert_eq!(
            q.values,
            [
                Value::from("x"),
                Value::Int(7),
                Value::Int(1),
                Value::Text(None),
                Value::Int(2),
                Value::Text(None)
            ]
        );
    }
}
