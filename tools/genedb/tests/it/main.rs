//! cellwright-tools-genedb's tests, one binary.

mod regulons;
mod tools;
