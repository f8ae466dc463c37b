//! Runnable examples of cellwright; see the `[[example]]` targets in this folder.
