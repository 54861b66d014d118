//! Loaded models kept in memory, least recently used evicted first, under a byte budget.

use inferchain_primitives::ModelId;
use std::sync::Arc;

/// An LRU cache of loaded models whose sizes add up to at most `budget` bytes. A model
/// larger than the whole budget is still returned to its caller, just not kept.
pub struct ModelCache<T> {
    budget: usize,
    used: usize,
    /// Most recently used last.
    entries: Vec<(ModelId, usize, Arc<T>)>,
}

impl<T> ModelCache<T> {
    pub fn new(budget: usize) -> Self {
        ModelCache {
            budget,
            used: 0,
            entries: Vec::new(),
        }
    }

    /// The cached model, marked as most recently used.
    pub fn get(&mut self, id: &ModelId) -> Option<Arc<T>> {
        let pos = self.entries.iter().position(|(i, _, _)| i == id)?;
        let entry = self.entries.remove(pos);
        let model = entry.2.clone();
        self.entries.push(entry);
        Some(model)
    }

    /// Caches `model` of `size` bytes, evicting the least recently used to make room.
    pub fn insert(&mut self, id: ModelId, size: usize, model: Arc<T>) {
        if let Some(pos) = self.entries.iter().position(|(i, _, _)| *i == id) {
            let (_, old, _) = self.entries.remove(pos);
            self.used -= old;
        }
        if size > self.budget {
            return;
        }
        while self.used + size > self.budget && !self.entries.is_empty() {
            let (_, evicted, _) = self.entries.remove(0);
            self.used -= evicted;
        }
        self.used += size;
        self.entries.push((id, size, model));
    }

    /// Bytes held.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Ids held, least recently used first.
    pub fn ids(&self) -> Vec<ModelId> {
        self.entries.iter().map(|(i, _, _)| *i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ModelId {
        ModelId::repeat_byte(n)
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut cache = ModelCache::new(100);
        cache.insert(id(1), 40, Arc::new(1));
        cache.insert(id(2), 40, Arc::new(2));
        assert!(cache.get(&id(1)).is_some()); // 2 is now the oldest
        cache.insert(id(3), 40, Arc::new(3));
        assert_eq!(cache.ids(), vec![id(1), id(3)]);
        assert_eq!(cache.used(), 80);
        assert!(cache.get(&id(2)).is_none());
    }

    #[test]
    fn a_model_over_budget_is_not_kept_and_evicts_nothing() {
        let mut cache = ModelCache::new(100);
        cache.insert(id(1), 60, Arc::new(1));
        cache.insert(id(2), 101, Arc::new(2));
        assert_eq!(cache.ids(), vec![id(1)]);
        cache.insert(id(1), 70, Arc::new(10));
        assert_eq!(cache.used(), 70);
        assert_eq!(cache.get(&id(1)).map(|m| *m), Some(10));
    }
}
