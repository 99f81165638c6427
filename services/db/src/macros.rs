//! Run one body of diesel code on whichever backend a [`crate::Db`] holds.
//!
//! diesel-async has no multi-backend connection, so the body is pasted into
//! one match arm per backend and compiled for each: write it once, and write
//! separate arms (match on `Db` yourself) only where the SQL truly differs.

/// Runs `$body` with `$conn` bound to a pooled connection of the backend in
/// use, and evaluates to the body's `Result`, whose error type must convert
/// from [`crate::Error`] (a pool failure). Name the result type with
/// `|conn| -> Result<T, E> { … }` when inference needs it.
///
/// ```text
/// let n = db_run!(db, |conn| {
///     runs::table.count().get_result::<i64>(conn).await.map_err(Error::from)
/// })?;
/// ```
#[macro_export]
macro_rules! db_run {
    ($db:expr, |$conn:ident| -> $ret:ty $body:block) => {
        match $db {
            $crate::Db::Pg(pool) => {
                (async || -> $ret {
                    let mut object = pool.get().await.map_err($crate::Error::from)?;
                    let $conn = &mut *object;
                    $body
                })()
                .await
            }
            $crate::Db::Sqlite(pool) => {
                (async || -> $ret {
                    let mut object = pool.get().await.map_err($crate::Error::from)?;
                    let $conn = &mut *object;
                    $body
                })()
                .await
            }
        }
    };
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::Db::Pg(pool) => {
                async {
                    let mut object = pool.get().await.map_err($crate::Error::from)?;
                    let $conn = &mut *object;
                    $body
                }
                .await
            }
            $crate::Db::Sqlite(pool) => {
                async {
                    let mut object = pool.get().await.map_err($crate::Error::from)?;
                    let $conn = &mut *object;
                    $body
                }
                .await
            }
        }
    };
}

/// Runs `$body` in one transaction and returns its result: committed when
/// it is `Ok`, rolled back when it is `Err`.
///
/// On SQLite the transaction begins `IMMEDIATE`, taking the write lock at
/// once, so two writers queue on the busy timeout instead of one failing
/// with `SQLITE_BUSY` when it upgrades its read lock.
///
/// The error type `E` must implement `From<diesel::result::Error>` and
/// `From<orchestra_db::Error>`.
#[macro_export]
macro_rules! db_tx {
    ($db:expr, |$conn:ident| -> $ret:ty $body:block) => {
        match $db {
            $crate::Db::Pg(pool) => {
                async {
                    let mut object = pool.get().await.map_err($crate::Error::from)?;
                    $crate::diesel_async::AsyncConnection::transaction(
                        &mut *object,
                        async move |$conn| -> $ret { $body },
                    )
                    .await
                }
                .await
            }
            $crate::Db::Sqlite(pool) => {
                async {
                    let mut object = pool.get().await.map_err($crate::Error::from)?;
                    object
                        .immediate_transaction(async move |$conn| -> $ret { $body })
                        .await
                }
                .await
            }
        }
    };
}

/// Expands `$impl_macro!(Connection)` once for each backend's connection
/// type: the way to write queries that run inside a caller's transaction.
///
/// Write the queries once as a trait whose methods take `&mut self`, and a
/// local `macro_rules!` that implements it for a `$conn:ty`; this macro then
/// pastes that implementation for Postgres and for SQLite, each compiled for
/// its backend, so code above stays generic over the trait with no diesel
/// bounds (storage generic over `B: Backend` is what this avoids).
///
/// ```text
/// macro_rules! impl_runs { ($conn:ty) => { impl RunStore for $conn { … } } }
/// orchestra_db::impl_for_connections!(impl_runs);
/// ```
#[macro_export]
macro_rules! impl_for_connections {
    ($impl_macro:ident) => {
        $impl_macro!($crate::diesel_async::AsyncPgConnection);
        $impl_macro!(
            $crate::diesel_async::sync_connection_wrapper::SyncConnectionWrapper<
                $crate::diesel::SqliteConnection,
            >
        );
    };
}
