//! Showcase scenario generators (work in progress).
