"""PAN-TF: Perceptual image super-resolution with a Progressive Adversarial Network."""
