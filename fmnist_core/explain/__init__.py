"""Inside a trained model: filters, feature maps, saliency and embeddings; the network wired for explanation;
pictures of them; and the deletion test of a saliency map's faithfulness.

May import: the shared leaves, `jobs`, `data`, `models`, `evaluate`, `store`, `training`.
"""
