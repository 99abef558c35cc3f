//! The static half of ABI v1 (`sdk/ABI.md`): the names and signatures a
//! plugin must export and may import, and the check of a compiled module
//! against them.
//!
//! Called by the host when a module is validated, before anything of the
//! module runs. A module that passes links against the host's `sluice`
//! imports and has every export the call protocol needs, typed as the host
//! will call it, so later lookups of exports cannot fail.

use std::fmt::Write as _;

use wasmtime::{ExternType, FuncType, MemoryType, Module, ValType};

use super::error::{ErrorKind, PluginError};
use super::plugin::PluginId;

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;
/// The only module namespace a plugin may import from.
pub const IMPORT_NAMESPACE: &str = "sluice";
/// Size of a Wasm page.
pub const WASM_PAGE_BYTES: u64 = 64 * 1024;

pub(crate) const MEMORY: &str = "memory";
pub(crate) const ABI_VERSION_FN: &str = "sluice_abi_version";
pub(crate) const BUFFER_FN: &str = "sluice_buffer";
pub(crate) const INIT_FN: &str = "sluice_init";
pub(crate) const PROCESS_FN: &str = "sluice_process";
pub(crate) const WATERMARK_FN: &str = "sluice_on_watermark";
pub(crate) const SNAPSHOT_FN: &str = "sluice_snapshot";
pub(crate) const RESTORE_FN: &str = "sluice_restore";

/// Hint for modules that were not built the supported way.
pub(crate) const BUILD_HINT: &str = "build for wasm32-unknown-unknown with sluice-sdk";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Val {
    I32,
    I64,
}

/// A function signature of ABI v1.
pub(crate) struct Sig {
    pub name: &'static str,
    params: &'static [Val],
    results: &'static [Val],
}

use Val::{I32, I64};

/// The functions a plugin must export.
const EXPORTS: [Sig; 7] = [
    Sig {
        name: ABI_VERSION_FN,
        params: &[],
        results: &[I32],
    },
    Sig {
        name: BUFFER_FN,
        params: &[I32],
        results: &[I32],
    },
    Sig {
        name: INIT_FN,
        params: &[I32, I32],
        results: &[I32],
    },
    Sig {
        name: PROCESS_FN,
        params: &[I32, I32],
        results: &[I32],
    },
    Sig {
        name: WATERMARK_FN,
        params: &[I64],
        results: &[I32],
    },
    Sig {
        name: SNAPSHOT_FN,
        params: &[],
        results: &[I64],
    },
    Sig {
        name: RESTORE_FN,
        params: &[I32, I32],
        results: &[I32],
    },
];

/// The functions a plugin may import from `sluice`.
const IMPORTS: [Sig; 5] = [
    Sig {
        name: "emit",
        params: &[I32, I32, I32, I32],
        results: &[],
    },
    Sig {
        name: "timer",
        params: &[I64],
        results: &[],
    },
    Sig {
        name: "log",
        params: &[I32, I32, I32],
        results: &[],
    },
    Sig {
        name: "metric",
        params: &[I32, I32, I32, I64],
        results: &[],
    },
    Sig {
        name: "fail",
        params: &[I32, I32],
        results: &[],
    },
];

impl Sig {
    fn matches(&self, ty: &FuncType) -> bool {
        fn same(want: &[Val], got: impl ExactSizeIterator<Item = ValType>) -> bool {
            want.len() == got.len()
                && want.iter().zip(got).all(|(w, g)| match w {
                    Val::I32 => matches!(g, ValType::I32),
                    Val::I64 => matches!(g, ValType::I64),
                })
        }
        same(self.params, ty.params()) && same(self.results, ty.results())
    }

    fn render(&self) -> String {
        let name = |v: &Val| if *v == I32 { "i32" } else { "i64" };
        let params: Vec<_> = self.params.iter().map(name).collect();
        let results: Vec<_> = self.results.iter().map(name).collect();
        render_sig(&params, &results)
    }
}

fn render_sig<S: AsRef<str>>(params: &[S], results: &[S]) -> String {
    let mut out = String::from("(");
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(p.as_ref());
    }
    out.push(')');
    match results {
        [] => {}
        [one] => write!(out, " -> {}", one.as_ref()).unwrap_or(()),
        many => {
            let list: Vec<&str> = many.iter().map(AsRef::as_ref).collect();
            write!(out, " -> ({})", list.join(", ")).unwrap_or(())
        }
    }
    out
}

fn render_func(ty: &FuncType) -> String {
    let params: Vec<String> = ty.params().map(|p| p.to_string()).collect();
    let results: Vec<String> = ty.results().map(|r| r.to_string()).collect();
    render_sig(&params, &results)
}

fn kind_name(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "a function",
        ExternType::Global(_) => "a global",
        ExternType::Table(_) => "a table",
        ExternType::Memory(_) => "a memory",
        ExternType::Tag(_) => "a tag",
    }
}

/// What [`check_module`] learned about an accepted module.
pub(crate) struct Shape {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// Checks a compiled module's imports and exports against ABI v1.
pub(crate) fn check_module(
    id: &PluginId,
    module: &Module,
    max_memory_bytes: usize,
) -> Result<Shape, PluginError> {
    let invalid =
        |message: String, hint: &str| PluginError::new(id, ErrorKind::Invalid, message, hint);
    let mut imports = Vec::new();
    for import in module.imports() {
        let (ns, name, ty) = (import.module(), import.name(), import.ty());
        let full = format!("{ns}::{name}");
        if ns != IMPORT_NAMESPACE {
            return Err(invalid(
                format!(
                    "imports `{full}`; Sluice plugins may import only the `{IMPORT_NAMESPACE}` \
                     namespace"
                ),
                BUILD_HINT,
            ));
        }
        let ExternType::Func(func) = &ty else {
            return Err(invalid(
                format!(
                    "imports {} as `{full}`; a plugin may import only the functions of the \
                     `{IMPORT_NAMESPACE}` namespace and must define its own memory, tables and \
                     globals",
                    kind_name(&ty)
                ),
                BUILD_HINT,
            ));
        };
        let Some(sig) = IMPORTS.iter().find(|s| s.name == name) else {
            let known: Vec<_> = IMPORTS.iter().map(|s| s.name).collect();
            return Err(invalid(
                format!(
                    "imports `{full}`, which the host does not provide; ABI v1 provides {}",
                    known.join(", ")
                ),
                "remove the import, or build against the sluice-sdk version for this engine",
            ));
        };
        if !sig.matches(func) {
            return Err(invalid(
                format!(
                    "imports `{full}` with signature {}; ABI v1 defines it as {}",
                    render_func(func),
                    sig.render()
                ),
                "fix the import declaration to match sdk/ABI.md, or use sluice-sdk",
            ));
        }
        imports.push(full);
    }

    let mut exports = Vec::new();
    for export in module.exports() {
        exports.push(export.name().to_string());
    }
    match module.get_export(MEMORY) {
        Some(ExternType::Memory(memory)) => check_memory(id, &memory, max_memory_bytes)?,
        Some(other) => {
            return Err(invalid(
                format!(
                    "exports {} named `{MEMORY}`; ABI v1 needs its linear memory there",
                    kind_name(&other)
                ),
                BUILD_HINT,
            ));
        }
        None => {
            return Err(invalid(
                format!("does not export its memory as `{MEMORY}`, which ABI v1 requires"),
                BUILD_HINT,
            ));
        }
    }
    for sig in &EXPORTS {
        match module.get_export(sig.name) {
            Some(ExternType::Func(func)) if sig.matches(&func) => {}
            Some(ExternType::Func(func)) => {
                return Err(invalid(
                    format!(
                        "exports `{}` with signature {}; ABI v1 requires {}",
                        sig.name,
                        render_func(&func),
                        sig.render()
                    ),
                    "fix the export to match sdk/ABI.md, or use sluice-sdk",
                ));
            }
            Some(other) => {
                return Err(invalid(
                    format!(
                        "exports {} as `{}`; ABI v1 requires a function {}",
                        kind_name(&other),
                        sig.name,
                        sig.render()
                    ),
                    BUILD_HINT,
                ));
            }
            None => {
                return Err(invalid(
                    format!(
                        "does not export `{}` {}, which ABI v1 requires",
                        sig.name,
                        sig.render()
                    ),
                    BUILD_HINT,
                ));
            }
        }
    }
    Ok(Shape { exports, imports })
}

fn check_memory(
    id: &PluginId,
    memory: &MemoryType,
    max_memory_bytes: usize,
) -> Result<(), PluginError> {
    if memory.is_64() || memory.is_shared() || memory.page_size() != WASM_PAGE_BYTES {
        return Err(PluginError::new(
            id,
            ErrorKind::Invalid,
            "exports a 64-bit, shared or custom-page-size memory; ABI v1 needs an ordinary \
             32-bit linear memory",
            BUILD_HINT,
        ));
    }
    let initial = memory.minimum().saturating_mul(WASM_PAGE_BYTES);
    if initial > max_memory_bytes as u64 {
        return Err(PluginError::new(
            id,
            ErrorKind::Invalid,
            format!(
                "declares an initial memory of {} MiB, more than the limit of {} MiB per instance \
                 (max_memory_bytes)",
                initial >> 20,
                max_memory_bytes >> 20
            ),
            "shrink the plugin's static data or initial heap, or raise the host's memory limit",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_render_like_the_abi_page() {
        assert_eq!(EXPORTS[3].render(), "(i32, i32) -> i32");
        assert_eq!(EXPORTS[5].render(), "() -> i64");
        assert_eq!(IMPORTS[0].render(), "(i32, i32, i32, i32)");
        assert_eq!(render_sig(&["i32"], &["i32", "i64"]), "(i32) -> (i32, i64)");
    }
}
