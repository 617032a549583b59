//! AWS Lake Formation: the grants that let the feature queries read the Security Lake tables.

pub mod grant;
