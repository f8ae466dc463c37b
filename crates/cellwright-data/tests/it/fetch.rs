//! A Debian-packaged data set comes through `apt-get download` and `dpkg-deb` whole.

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;

#[test]
fn the_seurat_example_counts_come_out_of_the_debian_package() {
    let files = catalogue::find("pbmc_raw")
        .unwrap()
        .fetch(&NoProgress, &CancelToken::new())
        .unwrap();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(header.len(), 80, "cells");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 230, "genes");
    assert!(rows.iter().all(|r| r.split('\t').count() == 81));
    // Nothing but the named file was kept.
    let dir = catalogue::SEURAT.cached().unwrap();
    let mut kept = Vec::new();
    for entry in walk(&dir) {
        kept.push(entry);
    }
    assert_eq!(kept, ["usr/lib/R/site-library/Seurat/extdata/pbmc_raw.txt"]);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if !p.ends_with(".sha256") {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}
