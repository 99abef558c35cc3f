//! Reference implementations (work in progress).
