"""Policies this project does not define: an external trainer (lerobot-train, openpi's train script, a
team's own) run as the policy stage, and the policy it trains served over openpi's protocol for
evaluation and collection. Commands are templates in the settings; nothing here imports torch."""
