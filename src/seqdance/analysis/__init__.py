"""The paper's analyses: attention maps against pair properties, embeddings against
measured conformational properties."""

from seqdance.analysis.attention import AttentionAnalysis, AttentionConfig, analyze_attention
from seqdance.analysis.attention_metrics import attention_metrics, pair_properties
from seqdance.analysis.embeddings import (
    EmbeddingAnalysis,
    PcaRegression,
    analyze_embeddings,
    fit_pca_regression,
)

__all__ = [
    "AttentionAnalysis",
    "AttentionConfig",
    "EmbeddingAnalysis",
    "PcaRegression",
    "analyze_attention",
    "analyze_embeddings",
    "attention_metrics",
    "fit_pca_regression",
    "pair_properties",
]
