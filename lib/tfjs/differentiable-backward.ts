/**
 * The backward of TRAIN_KERNEL in tfjs's own differentiable ops, for a gradient of a gradient
 * (a gradient penalty, say): tfjs records the ops a gradient function runs whenever an outer
 * gradient is being taken, and BACKWARD_KERNEL has no gradient of its own. The batch statistics
 * are recomputed from x here, so that the outer gradient reaches x through them as well.
 *
 *   xhat = (x - mean) * invStd,   g = dy * scale
 *   dx = invStd * (g - mean(g) - xhat * mean(g * xhat)),   dscale = sum(dy * xhat),   doffset = sum(dy)
 * (means and sums over every axis but the channel axis)
 */
import * as tf from '@tensorflow/tfjs';
import type { Tensor } from '@tensorflow/tfjs';

export function differentiableBackward(dy: Tensor, x: Tensor, scale: Tensor, axis: number, epsilon: number): [Tensor, Tensor, Tensor] {
  const axes = x.shape.map((_, k) => k).filter((k) => k !== axis);
  const perChannel = x.shape.map((d, k) => (k === axis ? d : 1));
  const { mean, variance } = tf.moments(x, axes, true);
  const invStd = tf.rsqrt(tf.add(variance, epsilon));
  const xhat = tf.mul(tf.sub(x, mean), invStd);
  const g = tf.mul(dy, tf.reshape(scale, perChannel));
  const dx = tf.mul(invStd, tf.sub(tf.sub(g, tf.mean(g, axes, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), axes, true))));
  return [dx, tf.sum(tf.mul(dy, xhat), axes), tf.sum(dy, axes)];
}
