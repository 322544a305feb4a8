//! A running record saved less often than its workers are pulled (every ⌈workers / 200⌉ rounds,
//! here forced to every 3 by the driver's test-only `PERFORNIUM_TEST_ROUNDS_PER_SAVE`): each
//! worker is acknowledged only what the saved record holds, so a leader that dies with several
//! rounds merged but unsaved loses and doubles nothing. The new leader pulls those batches again
//! from the workers; every worker's merged batches equal its own totals and the mock's count.

use super::exactly_once::leader_dies_with_unsaved_rounds;

#[test]
fn a_leader_dying_with_rounds_merged_but_unsaved_loses_and_doubles_nothing() {
    leader_dies_with_unsaved_rounds("http", Some(3));
}

#[test]
fn a_leader_dying_with_rounds_merged_but_unsaved_loses_and_doubles_nothing_over_websocket() {
    leader_dies_with_unsaved_rounds("websocket", Some(3));
}
