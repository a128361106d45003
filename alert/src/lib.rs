//! Alert: rules evaluated on the trend tables, detectors, notifiers and the alert log.
//!
//! Not built yet (a later issue).
