fn main() {
    #[cfg(feature = "std")]
    {
        substrate_wasm_builder::WasmBuilder::build_using_defaults();
        // The next release's runtime: the same code with its spec version one higher,
        // which the runtime-upgrade test enacts (`inferchain_runtime::next_runtime`).
        // Only the runtime crate itself compiles twice; its dependencies are shared.
        substrate_wasm_builder::WasmBuilder::init_with_defaults()
            .enable_feature("next-spec-version")
            .set_file_name("next_runtime_wasm.rs")
            .build();
    }
}
