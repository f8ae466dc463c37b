//! Human gene knowledge from Bioconductor's SQLite databases (`org.Hs.eg.db`, `GO.db` in the
//! catalogue), opened read-only: gene lookup by symbol, alias or Entrez id, GO annotations,
//! and the genes of a GO term. Every query binds its parameters; no SQL is built from text.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
// Dynamic SQL here only ever splices one of `Aspect::table`'s six constant table names.
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum GeneDbError {
    #[error("cannot open {path}: {message}")]
    Open { path: String, message: String },
    #[error("no human gene `{query}`{}", cellwright_core::did_you_mean(.suggestions))]
    UnknownGene {
        query: String,
        suggestions: Vec<String>,
    },
    #[error("no GO term `{query}`{}", cellwright_core::did_you_mean(.suggestions))]
    UnknownTerm {
        query: String,
        suggestions: Vec<String>,
    },
    #[error("the gene database failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// A GO aspect.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    BiologicalProcess,
    MolecularFunction,
    CellularComponent,
}

impl Aspect {
    pub const ALL: [Aspect; 3] = [
        Aspect::BiologicalProcess,
        Aspect::MolecularFunction,
        Aspect::CellularComponent,
    ];

    /// The annotation table of `org.Hs.eg.db` (a fixed name, never user text).
    fn table(self, with_offspring: bool) -> &'static str {
        match (self, with_offspring) {
            (Aspect::BiologicalProcess, false) => "go_bp",
            (Aspect::MolecularFunction, false) => "go_mf",
            (Aspect::CellularComponent, false) => "go_cc",
            (Aspect::BiologicalProcess, true) => "go_bp_all",
            (Aspect::MolecularFunction, true) => "go_mf_all",
            (Aspect::CellularComponent, true) => "go_cc_all",
        }
    }

    fn from_ontology(label: &str) -> Option<Self> {
        match label {
            "BP" => Some(Aspect::BiologicalProcess),
            "MF" => Some(Aspect::MolecularFunction),
            "CC" => Some(Aspect::CellularComponent),
            _ => None,
        }
    }
}

/// One human gene.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Gene {
    pub entrez_id: String,
    pub symbol: String,
    pub name: String,
    pub gene_type: Option<String>,
    pub chromosomes: Vec<String>,
    pub cytobands: Vec<String>,
    pub aliases: Vec<String>,
    /// Distinct GO terms annotated directly, per aspect.
    pub go_terms: BTreeMap<Aspect, usize>,
    /// How the query matched: `symbol`, `alias` or `entrez_id`.
    pub matched_by: String,
}

/// A GO term annotated to a gene.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Annotation {
    pub go_id: String,
    pub term: String,
    pub aspect: Aspect,
    /// Evidence codes (IDA, IBA, TAS, …), sorted.
    pub evidence: Vec<String>,
}

/// A GO term and its genes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TermGenes {
    pub go_id: String,
    pub term: String,
    pub aspect: Aspect,
    pub definition: Option<String>,
    /// Genes annotated to the term itself, by symbol.
    pub direct: Vec<String>,
    /// Genes annotated to it or to any term below it.
    pub with_offspring: usize,
}

/// What the databases say about one gene, in bulk: the text behind its knowledge embedding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneCard {
    pub entrez_id: String,
    pub symbol: String,
    pub name: String,
    /// Names of the GO terms annotated directly, per aspect, sorted, each once.
    pub go: BTreeMap<Aspect, Vec<String>>,
}

/// The two databases, read-only.
#[derive(Debug, Clone)]
pub struct GeneDb {
    org: SqlitePool,
    go: SqlitePool,
}

async fn open(path: &Path) -> Result<SqlitePool, GeneDbError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| GeneDbError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

impl GeneDb {
    pub async fn open(org_hs_eg: &Path, go: &Path) -> Result<Self, GeneDbError> {
        let db = Self {
            org: open(org_hs_eg).await?,
            go: open(go).await?,
        };
        // Fail at open, not at the first question, on a file that is not these databases.
        for (pool, table, path) in [(&db.org, "gene_info", org_hs_eg), (&db.go, "go_term", go)] {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?")
                    .bind(table)
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| GeneDbError::Open {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            if found.is_none() {
                return Err(GeneDbError::Open {
                    path: path.display().to_string(),
                    message: format!("it has no `{table}` table"),
                });
            }
        }
        Ok(db)
    }

    /// The gene's internal id and how it matched.
    async fn resolve(&self, query: &str) -> Result<(i64, &'static str), GeneDbError> {
        let query = query.trim();
        if !query.is_empty()
            && query.bytes().all(|b| b.is_ascii_digit())
            && let Some((id,)) = sqlx::query_as("SELECT _id FROM genes WHERE gene_id = ?")
                .bind(query)
                .fetch_optional(&self.org)
                .await?
        {
            return Ok((id, "entrez_id"));
        }
        if let Some((id,)) =
            sqlx::query_as("SELECT _id FROM gene_info WHERE symbol = ? COLLATE NOCASE LIMIT 1")
                .bind(query)
                .fetch_optional(&self.org)
                .await?
        {
            return Ok((id, "symbol"));
        }
        if let Some((id,)) = sqlx::query_as(
            "SELECT _id FROM alias WHERE alias_symbol = ? COLLATE NOCASE ORDER BY _id LIMIT 1",
        )
        .bind(query)
        .fetch_optional(&self.org)
        .await?
        {
            return Ok((id, "alias"));
        }
        Err(GeneDbError::UnknownGene {
            query: query.to_owned(),
            suggestions: self.close_symbols(query).await?,
        })
    }

    /// Symbols that look like `query`: same first two letters, nearest by Jaro-Winkler.
    async fn close_symbols(&self, query: &str) -> Result<Vec<String>, GeneDbError> {
        let prefix: String = query.chars().take(2).collect::<String>().to_uppercase();
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let candidates: Vec<(String,)> =
            sqlx::query_as("SELECT symbol FROM gene_info WHERE symbol LIKE ? || '%'")
                .bind(&prefix)
                .fetch_all(&self.org)
                .await?;
        Ok(cellwright_core::closest_matches(
            query,
            candidates.iter().map(|(s,)| s.as_str()),
            0.85,
            5,
        ))
    }

    /// Every official symbol and alias, each once: what [`GeneDb::lookup`] resolves besides
    /// Entrez ids.
    pub async fn names(&self) -> Result<Vec<String>, GeneDbError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT symbol FROM gene_info UNION SELECT alias_symbol FROM alias")
                .fetch_all(&self.org)
                .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// The gene a symbol, alias or Entrez id names.
    pub async fn lookup(&self, query: &str) -> Result<Gene, GeneDbError> {
        let (id, matched_by) = self.resolve(query).await?;
        self.gene(id, matched_by).await
    }

    /// The gene with internal id `id`.
    async fn gene(&self, id: i64, matched_by: &str) -> Result<Gene, GeneDbError> {
        let info = sqlx::query(
            "SELECT g.gene_id, i.symbol, i.gene_name FROM genes g JOIN gene_info i USING (_id) WHERE g._id = ?",
        )
        .bind(id)
        .fetch_one(&self.org)
        .await?;
        let strings = |sql: &'static str| {
            let pool = self.org.clone();
            async move {
                let rows: Vec<(String,)> = sqlx::query_as(sql).bind(id).fetch_all(&pool).await?;
                Ok::<Vec<String>, GeneDbError>(rows.into_iter().map(|(s,)| s).collect())
            }
        };
        let mut go_terms = BTreeMap::new();
        for aspect in Aspect::ALL {
            // The table name is one of six constants.
            let sql = format!(
                "SELECT COUNT(DISTINCT go_id) FROM {} WHERE _id = ?",
                aspect.table(false)
            );
            let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&self.org)
                .await?;
            go_terms.insert(aspect, n as usize);
        }
        Ok(Gene {
            entrez_id: info.try_get(0)?,
            symbol: info.try_get(1)?,
            name: info.try_get(2)?,
            gene_type: strings("SELECT gene_type FROM genetype WHERE _id = ?")
                .await?
                .into_iter()
                .next(),
            chromosomes: strings("SELECT chromosome FROM chromosomes WHERE _id = ? ORDER BY 1")
                .await?,
            cytobands: strings(
                "SELECT cytogenetic_location FROM cytogenetic_locations WHERE _id = ? ORDER BY 1",
            )
            .await?,
            aliases: strings("SELECT alias_symbol FROM alias WHERE _id = ? ORDER BY 1").await?,
            go_terms,
            matched_by: matched_by.to_owned(),
        })
    }

    /// GO terms annotated directly to the gene, in `aspects`, by aspect then id.
    pub async fn go_terms(
        &self,
        gene: &str,
        aspects: &[Aspect],
    ) -> Result<(Gene, Vec<Annotation>), GeneDbError> {
        let (id, matched_by) = self.resolve(gene).await?;
        let found = self.gene(id, matched_by).await?;
        let mut evidence: BTreeMap<(Aspect, String), Vec<String>> = BTreeMap::new();
        for aspect in aspects {
            let sql = format!(
                "SELECT go_id, evidence FROM {} WHERE _id = ?",
                aspect.table(false)
            );
            let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id)
                .fetch_all(&self.org)
                .await?;
            for (go_id, code) in rows {
                let codes = evidence.entry((*aspect, go_id)).or_default();
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
        }
        let terms = self
            .term_names(evidence.keys().map(|(_, id)| id.as_str()))
            .await?;
        let annotations = evidence
            .into_iter()
            .map(|((aspect, go_id), mut codes)| {
                codes.sort();
                Annotation {
                    term: terms.get(&go_id).cloned().unwrap_or_default(),
                    go_id,
                    aspect,
                    evidence: codes,
                }
            })
            .collect();
        Ok((found, annotations))
    }

    async fn term_names<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<BTreeMap<String, String>, GeneDbError> {
        let ids: Vec<&str> = ids.collect();
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(500) {
            let mut query: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT go_id, term FROM go_term WHERE go_id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            let rows: Vec<(String, String)> = query.build_query_as().fetch_all(&self.go).await?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// A GO term, by id (`GO:0006096`) or exact name (`glycolytic process`), and its genes.
    pub async fn genes_for_term(&self, term: &str) -> Result<TermGenes, GeneDbError> {
        let term = term.trim();
        let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT go_id, term, ontology, definition FROM go_term WHERE go_id = ? OR term = ? COLLATE NOCASE LIMIT 1",
        )
        .bind(term)
        .bind(term)
        .fetch_optional(&self.go)
        .await?;
        let Some((go_id, name, ontology, definition)) = row else {
            let like: Vec<(String,)> = sqlx::query_as(
                "SELECT term FROM go_term WHERE term LIKE '%' || ? || '%' ORDER BY length(term) LIMIT 5",
            )
            .bind(term)
            .fetch_all(&self.go)
            .await?;
            return Err(GeneDbError::UnknownTerm {
                query: term.to_owned(),
                suggestions: like.into_iter().map(|(t,)| t).collect(),
            });
        };
        let aspect = Aspect::from_ontology(&ontology).ok_or_else(|| GeneDbError::UnknownTerm {
            query: term.to_owned(),
            suggestions: Vec::new(),
        })?;
        let sql = format!(
            "SELECT DISTINCT i.symbol FROM {} a JOIN gene_info i USING (_id) WHERE a.go_id = ? ORDER BY 1",
            aspect.table(false)
        );
        let direct: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&go_id)
            .fetch_all(&self.org)
            .await?;
        let sql = format!(
            "SELECT COUNT(DISTINCT _id) FROM {} WHERE go_id = ?",
            aspect.table(true)
        );
        let (with_offspring,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&go_id)
            .fetch_one(&self.org)
            .await?;
        Ok(TermGenes {
            go_id,
            term: name,
            aspect,
            definition,
            direct: direct.into_iter().map(|(s,)| s).collect(),
            with_offspring: with_offspring as usize,
        })
    }

    /// Every gene with its name and GO term names, by Entrez id (a few bulk queries).
    pub async fn cards(&self) -> Result<Vec<GeneCard>, GeneDbError> {
        let genes: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT g._id, g.gene_id, i.symbol, i.gene_name FROM genes g JOIN gene_info i USING (_id) ORDER BY CAST(g.gene_id AS INTEGER)",
        )
        .fetch_all(&self.org)
        .await?;
        let mut annotated: BTreeMap<(i64, Aspect), Vec<String>> = BTreeMap::new();
        for aspect in Aspect::ALL {
            let sql = format!("SELECT DISTINCT _id, go_id FROM {}", aspect.table(false));
            let rows: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_all(&self.org)
                .await?;
            for (id, go_id) in rows {
                annotated.entry((id, aspect)).or_default().push(go_id);
            }
        }
        let mut ids: Vec<&str> = annotated.values().flatten().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let names = self.term_names(ids.into_iter()).await?;
        Ok(genes
            .into_iter()
            .map(|(id, entrez_id, symbol, name)| {
                let go = Aspect::ALL
                    .into_iter()
                    .filter_map(|aspect| {
                        let ids = annotated.get(&(id, aspect))?;
                        let mut terms: Vec<String> =
                            ids.iter().filter_map(|i| names.get(i).cloned()).collect();
                        terms.sort();
                        terms.dedup();
                        Some((aspect, terms))
                    })
                    .collect();
                GeneCard {
                    entrez_id,
                    symbol,
                    name,
                    go,
                }
            })
            .collect())
    }
}
