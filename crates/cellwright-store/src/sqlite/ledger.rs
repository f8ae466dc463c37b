//! The experiment ledger of hypothesis loops: one row per planned experiment, written before
//! it runs and completed after, so a loop killed at any point resumes without running any
//! experiment twice.

use serde_json::Value;
use sqlx::{Connection, Row};

use super::SqliteStore;
use cellwright_core::StoreError;

/// An experiment as planned, before it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub gene: String,
    /// Why this gene was picked.
    pub hypothesis: String,
    /// What is run, as JSON (the backend and the perturbation).
    pub design: Value,
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub strategy: String,
    pub round: u32,
    /// Order within the round.
    pub pick: u32,
    pub gene: String,
    pub hypothesis: String,
    pub design: Value,
    /// Runs of this experiment that started: 0 while only planned, 1 normally, more when a
    /// killed loop repeated one that had started but not finished.
    pub attempts: u32,
    /// The measured phenotype, once it is known.
    pub result: Option<f64>,
}

impl SqliteStore {
    /// Stores `task` as loop `loop_id`'s task unless the loop exists; returns the stored task
    /// (for an existing loop, the one it was started with).
    pub async fn ledger_open(&self, loop_id: &str, task: &Value) -> Result<Value, StoreError> {
        let now = self.clock.now_ms();
        let mut writer = self.shared.writer.lock().await;
        let conn = writer.conn()?;
        sqlx::query("INSERT OR IGNORE INTO loops (loop_id, task, created_ms) VALUES (?, ?, ?)")
            .bind(loop_id)
            .bind(task.to_string())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db_error(e))?;
        drop(writer);
        self.ledger_task(loop_id)
            .await?
            .ok_or_else(|| StoreError::RunNotFound(loop_id.to_owned()))
    }

    /// The task loop `loop_id` was started with, if there is such a loop.
    pub async fn ledger_task(&self, loop_id: &str) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT task FROM loops WHERE loop_id = ?")
            .bind(loop_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.db_error(e))?;
        row.map(|r| {
            let text: String = r.get(0);
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                what: format!("task of loop {loop_id}"),
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Plans one round of `strategy` in one transaction: every pick or none is stored. A gene
    /// the strategy has planned before is refused, so no experiment can be planned twice.
    pub async fn ledger_plan(
        &self,
        loop_id: &str,
        strategy: &str,
        round: u32,
        picks: &[Planned],
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let mut writer = self.shared.writer.lock().await;
        let conn = writer.conn()?;
        let mut tx = conn.begin().await.map_err(|e| self.db_error(e))?;
        for (pick, p) in picks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO experiments (loop_id, strategy, round, pick, gene, hypothesis, design, planned_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(loop_id)
            .bind(strategy)
            .bind(i64::from(round))
            .bind(pick as i64)
            .bind(&p.gene)
            .bind(&p.hypothesis)
            .bind(p.design.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.to_string() {
                m if m.contains("UNIQUE") => StoreError::Corrupt {
                    what: format!("ledger of loop {loop_id}"),
                    message: format!("{strategy} planned {} twice", p.gene),
                },
                _ => self.db_error(e),
            })?;
        }
        tx.commit().await.map_err(|e| self.db_error(e))
    }

    /// Records that an experiment starts to run; returns how many runs of it have started.
    pub async fn ledger_start(
        &self,
        loop_id: &str,
        strategy: &str,
        gene: &str,
    ) -> Result<u32, StoreError> {
        let now = self.clock.now_ms();
        let mut writer = self.shared.writer.lock().await;
        let conn = writer.conn()?;
        let row = sqlx::query(
            "UPDATE experiments SET attempts = attempts + 1, started_ms = ? \
             WHERE loop_id = ? AND strategy = ? AND gene = ? AND result IS NULL RETURNING attempts",
        )
        .bind(now)
        .bind(loop_id)
        .bind(strategy)
        .bind(gene)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.db_error(e))?;
        let attempts: i64 = row
            .map(|r| r.get(0))
            .ok_or_else(|| unplanned(loop_id, strategy, gene))?;
        Ok(attempts as u32)
    }

    /// Records an experiment's result; an experiment has one result, never two.
    pub async fn ledger_result(
        &self,
        loop_id: &str,
        strategy: &str,
        gene: &str,
        value: f64,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let mut writer = self.shared.writer.lock().await;
        let conn = writer.conn()?;
        let done = sqlx::query(
            "UPDATE experiments SET result = ?, result_ms = ? \
             WHERE loop_id = ? AND strategy = ? AND gene = ? AND result IS NULL AND attempts > 0",
        )
        .bind(value)
        .bind(now)
        .bind(loop_id)
        .bind(strategy)
        .bind(gene)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.db_error(e))?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(unplanned(loop_id, strategy, gene))
        }
    }

    /// The ids of the stored loops, newest first.
    pub async fn ledger_loops(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT loop_id FROM loops ORDER BY created_ms DESC, rowid DESC")
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Every experiment of loop `loop_id`, by strategy, round and pick.
    pub async fn ledger(&self, loop_id: &str) -> Result<Vec<Experiment>, StoreError> {
        let rows = sqlx::query(
            "SELECT strategy, round, pick, gene, hypothesis, design, attempts, result \
             FROM experiments WHERE loop_id = ? ORDER BY strategy, round, pick",
        )
        .bind(loop_id)
        .fetch_all(&self.reader)
        .await
        .map_err(|e| self.db_error(e))?;
        rows.into_iter()
            .map(|r| {
                let design: String = r.get(5);
                Ok(Experiment {
                    strategy: r.get(0),
                    round: r.get::<i64, _>(1) as u32,
                    pick: r.get::<i64, _>(2) as u32,
                    gene: r.get(3),
                    hypothesis: r.get(4),
                    design: serde_json::from_str(&design).map_err(|e| StoreError::Corrupt {
                        what: format!("ledger of loop {loop_id}"),
                        message: e.to_string(),
                    })?,
                    attempts: r.get::<i64, _>(6) as u32,
                    result: r.get(7),
                })
            })
            .collect()
    }
}

fn unplanned(loop_id: &str, strategy: &str, gene: &str) -> StoreError {
    StoreError::Corrupt {
        what: format!("ledger of loop {loop_id}"),
        message: format!("{strategy} has no open experiment on {gene}"),
    }
}
