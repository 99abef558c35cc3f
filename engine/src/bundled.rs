//! `bundled`: the plugins shipped inside the `sluice` binary.
//!
//! `build.rs` compiles every crate under `plugins/` to WebAssembly and generates
//! the table included here, so the modules are part of the binary and need no
//! files at run time. A leaf module: it knows nothing of jobs or the Wasm host;
//! whoever registers plugins reads [`bundled_plugins`].

/// One plugin module built from `plugins/<name>` and embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin {
    /// The plugin's name: its crate name (`nexmark`).
    pub name: &'static str,
    /// The plugin's version: its crate version.
    pub version: &'static str,
    /// The WebAssembly module (ABI v1, see `sdk/ABI.md`).
    pub wasm: &'static [u8],
}

static BUNDLED: &[BundledPlugin] = include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// Every bundled plugin, ordered by name.
pub fn bundled_plugins() -> &'static [BundledPlugin] {
    BUNDLED
}

/// The bundled plugin called `name`, if any.
pub fn bundled_plugin(name: &str) -> Option<&'static BundledPlugin> {
    BUNDLED.iter().find(|plugin| plugin.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_plugins_are_wasm_modules_with_crate_versions() {
        let plugins = bundled_plugins();
        assert!(
            bundled_plugin("nexmark").is_some(),
            "nexmark is bundled: {plugins:?}"
        );
        assert!(
            bundled_plugin("sdk-selftest").is_none(),
            "test plugins are not bundled"
        );
        for plugin in plugins {
            assert_eq!(
                &plugin.wasm[..4],
                b"\0asm",
                "{} is not a Wasm module",
                plugin.name
            );
            assert_eq!(plugin.version, env!("CARGO_PKG_VERSION"), "{}", plugin.name);
        }
    }
}
