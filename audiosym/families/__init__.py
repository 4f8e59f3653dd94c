"""Model families (SPS, V3, ...): what each one's latents are and how MIDI pitch maps onto them."""
