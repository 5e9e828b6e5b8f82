"""Model recipes: one YAML file per model, loaded by slmkit.converter.models.recipe."""
