//! Figures: a repeated measurement summarised as median, min and max, and
//! percentiles of a distribution within one repetition.

/// One figure over its repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The middle repetition (the mean of the two middle ones when even).
    pub median: f64,
    /// The best repetition.
    pub min: f64,
    /// The worst repetition.
    pub max: f64,
}

impl Figure {
    /// Summarises repetitions; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Figure> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        };
        Some(Figure {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    /// A figure measured once.
    pub fn single(value: f64) -> Figure {
        Figure {
            median: value,
            min: value,
            max: value,
        }
    }
}

/// The `p`-th percentile (0–100) of `values` by nearest rank; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Figure::of(&[3.0, 1.0, 2.0]).expect("values");
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Figure::of(&[4.0, 1.0, 2.0, 3.0]).expect("values");
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert_eq!(Figure::of(&[]), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
