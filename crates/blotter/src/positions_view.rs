//! Positions for reading: the positions fold over durable events, off the engine task.

use journal::Delivery;
use model::{AccountId, Event};
use positions::{Position, Positions, PositionsError};
use runtime::{Consumer, Snapshot};
use serde::{Deserialize, Serialize};

/// Every account's positions, marked to the latest durable market data. Its size is accounts x
/// instruments, never history. Run it as a snapshot consumer over every subject (fills move
/// positions, market data moves marks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PositionsView {
    positions: Positions,
}

impl PositionsView {
    /// The subjects the view reads.
    pub const FILTER: &'static str = "fills.* md.>";

    pub fn new() -> PositionsView {
        PositionsView::default()
    }

    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Positions of the given accounts (`None`: all), in account then instrument order.
    pub fn list(&self, accounts: Option<&[AccountId]>) -> Vec<Position> {
        match accounts {
            None => self.positions.all().cloned().collect(),
            Some(list) => list
                .iter()
                .flat_map(|a| self.positions.account_positions(a).cloned())
                .collect(),
        }
    }
}

impl Consumer for PositionsView {
    type Error = PositionsError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), PositionsError> {
        for d in batch {
            self.positions.on_event(&d.event)?;
        }
        Ok(())
    }
}

impl Snapshot for PositionsView {
    const STATE_VERSION: u32 = positions::SNAPSHOT_VERSION;
}
