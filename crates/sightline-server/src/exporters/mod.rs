//! Exporters: forwarding what Sightline received to other systems, one folder per destination.

pub mod otlp;
