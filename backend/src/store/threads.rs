//! [`ThreadStore`]: comment threads anchored to lines of a file in a snapshot, their comments
//! in reply order (edits keep the earlier bodies; deletion hides the body), on [`SqlStore`].

use super::sql::{SqlStore, get_opt_ts, get_opt_uuid, get_ts, get_uuid, ms};
use super::{StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who wrote a comment: a person, or an AI job acting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorKind {
    User,
    Ai,
}

impl AuthorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorKind::User => "user",
            AuthorKind::Ai => "ai",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(AuthorKind::User),
            "ai" => Some(AuthorKind::Ai),
            _ => None,
        }
    }
}

/// Where a thread was opened: lines of a file in a snapshot, with their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub snapshot_id: Uuid,
    pub path: String,
    /// blake3 of the file's content at that snapshot (to follow renames).
    pub file_hash: String,
    pub start_line: u64,
    pub end_line: u64,
    pub lines: String,
    pub context_before: String,
    pub context_after: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: Uuid,
    pub project_id: Uuid,
    pub resolved: bool,
    pub anchor: Anchor,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentEdit {
    /// The body before the edit.
    pub body: String,
    pub replaced_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Uuid,
    pub thread_id: Uuid,
    pub author_id: Option<Uuid>,
    pub author_kind: AuthorKind,
    /// Markdown; empty once deleted.
    pub body: String,
    pub created_at: OffsetDateTime,
    pub edited_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
    /// Earlier bodies, oldest first.
    pub history: Vec<CommentEdit>,
}

/// Filters for [`ThreadStore::threads`].
#[derive(Debug, Clone, Default)]
pub struct ThreadFilter {
    pub path: Option<String>,
    pub resolved: Option<bool>,
}

#[async_trait]
pub trait ThreadStore: Send + Sync {
    /// Creates the thread with its first comment.
    async fn create_thread(&self, thread: &Thread, first: &Comment) -> StoreResult<()>;
    async fn thread(&self, id: Uuid) -> StoreResult<Option<Thread>>;
    /// The project's threads, oldest first.
    async fn threads(&self, project_id: Uuid, filter: &ThreadFilter) -> StoreResult<Vec<Thread>>;
    /// Comments of the threads, in reply order, with their edit history.
    async fn comments(&self, thread_ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Vec<Comment>>>;
    async fn add_comment(&self, comment: &Comment) -> StoreResult<()>;
    async fn comment(&self, thread_id: Uuid, id: Uuid) -> StoreResult<Option<Comment>>;
    /// Replaces the body, keeping the old one in the history.
    async fn edit_comment(&self, id: Uuid, body: &str, at: OffsetDateTime) -> StoreResult<()>;
    /// Hides the body (kept in the history) and marks the comment deleted.
    async fn delete_comment(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()>;
    /// Sets the status; returns false when it already had it.
    async fn set_resolved(
        &self,
        id: Uuid,
        resolved: bool,
        by: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
}

const THREAD_COLUMNS: &str = "id, project_id, status, snapshot_id, path, file_hash, start_line, \
     end_line, anchor_lines, context_before, context_after, created_by, created_at, updated_at, \
     resolved_by, resolved_at";

const COMMENT_COLUMNS: &str =
    "id, thread_id, author_id, author_kind, body, created_at, edited_at, deleted_at";

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn line(row: &AnyRow, col: &str) -> StoreResult<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} {v}")))
}

fn thread_from(row: &AnyRow) -> StoreResult<Thread> {
    let status: String = row.try_get("status")?;
    Ok(Thread {
        id: get_uuid(row, "id")?,
        project_id: get_uuid(row, "project_id")?,
        resolved: match status.as_str() {
            "open" => false,
            "resolved" => true,
            other => return Err(StoreError::Corrupt(format!("thread status `{other}`"))),
        },
        anchor: Anchor {
            snapshot_id: get_uuid(row, "snapshot_id")?,
            path: row.try_get("path")?,
            file_hash: row.try_get("file_hash")?,
            start_line: line(row, "start_line")?,
            end_line: line(row, "end_line")?,
            lines: row.try_get("anchor_lines")?,
            context_before: row.try_get("context_before")?,
            context_after: row.try_get("context_after")?,
        },
        created_by: get_opt_uuid(row, "created_by")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        resolved_by: get_opt_uuid(row, "resolved_by")?,
        resolved_at: get_opt_ts(row, "resolved_at")?,
    })
}

fn comment_from(row: &AnyRow) -> StoreResult<Comment> {
    let kind: String = row.try_get("author_kind")?;
    Ok(Comment {
        id: get_uuid(row, "id")?,
        thread_id: get_uuid(row, "thread_id")?,
        author_id: get_opt_uuid(row, "author_id")?,
        author_kind: AuthorKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("author_kind `{kind}`")))?,
        body: row.try_get("body")?,
        created_at: get_ts(row, "created_at")?,
        edited_at: get_opt_ts(row, "edited_at")?,
        deleted_at: get_opt_ts(row, "deleted_at")?,
        history: Vec::new(),
    })
}

impl SqlStore {
    async fn insert_comment<'e, E>(executor: E, c: &Comment) -> StoreResult<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        sqlx::query(&format!(
            "INSERT INTO thread_comments ({COMMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(c.id.to_string())
        .bind(c.thread_id.to_string())
        .bind(c.author_id.map(|u| u.to_string()))
        .bind(c.author_kind.as_str())
        .bind(&c.body)
        .bind(ms(c.created_at))
        .bind(c.edited_at.map(ms))
        .bind(c.deleted_at.map(ms))
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Moves the current body into the history (one transaction with the change).
    async fn replace_body(
        &self,
        id: Uuid,
        body: &str,
        at: OffsetDateTime,
        delete: bool,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO thread_comment_edits (id, comment_id, body, replaced_at)
             SELECT $1, id, body, $2 FROM thread_comments WHERE id = $3",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(ms(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let sql = if delete {
            "UPDATE thread_comments SET body = $1, deleted_at = $2 WHERE id = $3"
        } else {
            "UPDATE thread_comments SET body = $1, edited_at = $2 WHERE id = $3"
        };
        sqlx::query(sql)
            .bind(body)
            .bind(ms(at))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ThreadStore for SqlStore {
    async fn create_thread(&self, t: &Thread, first: &Comment) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO threads ({THREAD_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(t.id.to_string())
        .bind(t.project_id.to_string())
        .bind(if t.resolved { "resolved" } else { "open" })
        .bind(t.anchor.snapshot_id.to_string())
        .bind(&t.anchor.path)
        .bind(&t.anchor.file_hash)
        .bind(as_i64(t.anchor.start_line))
        .bind(as_i64(t.anchor.end_line))
        .bind(&t.anchor.lines)
        .bind(&t.anchor.context_before)
        .bind(&t.anchor.context_after)
        .bind(t.created_by.map(|u| u.to_string()))
        .bind(ms(t.created_at))
        .bind(ms(t.updated_at))
        .bind(t.resolved_by.map(|u| u.to_string()))
        .bind(t.resolved_at.map(ms))
        .execute(&mut *tx)
        .await?;
        Self::insert_comment(&mut *tx, first).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn thread(&self, id: Uuid) -> StoreResult<Option<Thread>> {
        let row = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(thread_from).transpose()
    }

    async fn threads(&self, project_id: Uuid, filter: &ThreadFilter) -> StoreResult<Vec<Thread>> {
        let rows = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads
             WHERE project_id = $1
               AND ($2 = 0 OR path = $3)
               AND ($4 = 0 OR status = $5)
             ORDER BY created_at, id"
        ))
        .bind(project_id.to_string())
        .bind(i64::from(filter.path.is_some()))
        .bind(filter.path.clone().unwrap_or_default())
        .bind(i64::from(filter.resolved.is_some()))
        .bind(if filter.resolved == Some(true) {
            "resolved"
        } else {
            "open"
        })
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(thread_from).collect()
    }

    async fn comments(&self, thread_ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Vec<Comment>>> {
        let mut out: HashMap<Uuid, Vec<Comment>> = HashMap::new();
        for chunk in thread_ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let list = placeholders.join(", ");
            let sql = format!(
                "SELECT {COMMENT_COLUMNS} FROM thread_comments WHERE thread_id IN ({list})
                 ORDER BY created_at, id"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            let mut by_id: HashMap<Uuid, (Uuid, usize)> = HashMap::new();
            for row in q.fetch_all(self.pool()).await? {
                let c = comment_from(&row)?;
                let list = out.entry(c.thread_id).or_default();
                by_id.insert(c.id, (c.thread_id, list.len()));
                list.push(c);
            }
            let sql = format!(
                "SELECT e.comment_id, e.body, e.replaced_at FROM thread_comment_edits e
                 JOIN thread_comments c ON c.id = e.comment_id
                 WHERE c.thread_id IN ({list}) ORDER BY e.replaced_at, e.id"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for row in q.fetch_all(self.pool()).await? {
                let comment_id = get_uuid(&row, "comment_id")?;
                if let Some((thread_id, index)) = by_id.get(&comment_id)
                    && let Some(c) = out.get_mut(thread_id).and_then(|l| l.get_mut(*index))
                {
                    c.history.push(CommentEdit {
                        body: row.try_get("body")?,
                        replaced_at: get_ts(&row, "replaced_at")?,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn add_comment(&self, comment: &Comment) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE threads SET updated_at = $1 WHERE id = $2")
            .bind(ms(comment.created_at))
            .bind(comment.thread_id.to_string())
            .execute(&mut *tx)
            .await?;
        Self::insert_comment(&mut *tx, comment).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn comment(&self, thread_id: Uuid, id: Uuid) -> StoreResult<Option<Comment>> {
        let row = sqlx::query(&format!(
            "SELECT {COMMENT_COLUMNS} FROM thread_comments WHERE thread_id = $1 AND id = $2"
        ))
        .bind(thread_id.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(comment_from).transpose()
    }

    async fn edit_comment(&self, id: Uuid, body: &str, at: OffsetDateTime) -> StoreResult<()> {
        self.replace_body(id, body, at, false).await
    }

    async fn delete_comment(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        self.replace_body(id, "", at, true).await
    }

    async fn set_resolved(
        &self,
        id: Uuid,
        resolved: bool,
        by: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (status, other) = if resolved {
            ("resolved", "open")
        } else {
            ("open", "resolved")
        };
        let r = sqlx::query(
            "UPDATE threads SET status = $1, updated_at = $2,
                 resolved_by = CASE WHEN $1 = 'resolved' THEN $3 ELSE NULL END,
                 resolved_at = CASE WHEN $1 = 'resolved' THEN $2 ELSE NULL END
             WHERE id = $4 AND status = $5",
        )
        .bind(status)
        .bind(ms(at))
        .bind(by.to_string())
        .bind(id.to_string())
        .bind(other)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
