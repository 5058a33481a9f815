//! Falco rules files: rules, macros, lists and exceptions, lowered to the IR.
//!
//! Place in the data flow: `ruleatlas_rules` hands every Falco rules file to [`load_files`]
//! (files load together, in order, because a later file may redefine a macro or extend a list
//! that an earlier rule uses); the resulting [`ruleatlas_ir::Rule`]s go to the mapper and the
//! engine like any other vendor's. The engine calls [`render_output`] to turn a rule's output
//! template into the alert text. Central function: [`load_files`].
//!
//! Rules of the `k8s_audit` source lower to tests over the raw Kubernetes audit Event (the
//! k8saudit and json plugins' fields, see `fields`), with logsource `kubernetes`/`audit`. Rules
//! of other sources (syscall, other plugins) load and keep their fields by name, with a log
//! source no audit event satisfies (`linux` for syscall).
//!
//! Known differences from Falco (each rare in practice, none met by Falco's own k8s_audit suite):
//! - `<`, `<=`, `>`, `>=` compare numerically when both sides are numbers; Falco compares the
//!   k8saudit plugin's string fields as strings;
//! - `json.value[…]` equality on an array matches any element (Falco compares the JSON text);
//!   `exists` on an explicit JSON `null` is false (Falco sees the text `null`);
//! - a container without an `image` does not hide the other containers' images (the plugin then
//!   yields no value at all);
//! - `ka.uri.param[…]`, `ka.req.pod.volumes.volume_type`, `ka.req.pod.*.eff_run_as_*`,
//!   `ka.req.binding.subject.has_name` and `ka.cluster.name` are `unsupported` in conditions
//!   (outputs render `ka.uri.param[…]` and print `<NA>` for the others), as are `bcontains`
//!   with non-UTF-8 bytes and `jevt.rawtime` compared with anything but 0.
//!
//! ```
//! let text = "- list: verbs\n  items: [create, update]\n\
//!             - rule: Writes\n  desc: d\n  condition: ka.verb in (verbs)\n  output: by %ka.user.name\n  priority: NOTICE\n  source: k8s_audit\n";
//! let (rules, diags) = ruleatlas_lang_falco::load_files(&[("rules.yaml".into(), text.into())]);
//! assert!(diags.is_empty());
//! assert_eq!(rules[0].lowered.status(), "ok");
//! let ev = serde_json::json!({"user": {"username": "alice"}});
//! assert_eq!(ruleatlas_lang_falco::render_output("by %ka.user.name", &ev), "by alice");
//! ```

mod compile;
mod fields;
mod load;
mod lower;
mod output;
mod parse;
mod yaml;

pub use compile::compile_condition;
pub use load::load_files;
pub use output::{output_fields, render_output, render_output_with_text, OutputTemplate};
