"""tradeoff.bench (steps, profile): the step, its FLOP counts, its op-time profile."""
import pytest

from tradeoff import bench_xla
from tradeoff.bench import profile as bench_profile
from tradeoff.bench import steps as benchmarks

_HLO = '''
%fused_computation.38 (param_0: f32[128,14,14,64], param_1: f32[5,5,64,32]) -> f32[128,14,2,14,2,32] {
  %param_0 = f32[128,14,14,64]{3,2,1,0} parameter(0)
  %param_1 = f32[5,5,64,32]{3,2,1,0} parameter(1)
  %convolution.25 = f32[128,14,14,32]{3,2,1,0} convolution(%param_0, %param_1), window={size=5x5 pad=2_2x2_2}, dim_labels=b01f_01io->b01f, metadata={op_name="jit(_fun)/jvp()/closed_call/transpose(jvp(MadryCNN))/Conv_1/conv_general_dilated"}
  ROOT %broadcast.92 = f32[128,14,2,14,2,32]{5,4,3,2,1,0} broadcast(%convolution.25), dimensions={0,1,3,5}, metadata={op_name="jit(_fun)/transpose(jvp(MadryCNN))/broadcast_in_dim"}
}

ENTRY %main {
  %ynn_fusion.38 = f32[128,14,2,14,2,32]{5,4,3,2,1,0} fusion(%x, %k), kind=kCustom, calls=%fused_computation.38, metadata={op_name="jit(_fun)/jvp(MadryCNN)/reduce_sum"}
  %ynn_fusion.84 = f32[128,14,14,64]{3,2,1,0} fusion(%a, %b), kind=kCustom, calls=%fc.84, metadata={op_name="pmap(step)/jit(_fun)/jvp(MadryCNN)/Conv_1/conv_general_dilated" stack_frame_id=1}
  %add.3 = f32[10]{0} add(%c, %d), metadata={op_name="jit(_fun)/closed_call/transpose(jvp(MadryCNN))/Dense_1/add"}
  %copy.1 = f32[10]{0} copy(%add.3)
}
'''


def test_op_labels_name_the_jax_op_and_shape():
  labels = bench_profile.op_labels(_HLO)
  assert labels['ynn_fusion.84'] == 'jvp(MadryCNN)/Conv_1/conv_general_dilated -> f32[128,14,14,64]'
  assert labels['add.3'] == 'transpose(jvp(MadryCNN))/Dense_1/add -> f32[10]'
  assert labels['copy.1'] == 'copy (no op_name) -> f32[10]'
  # A fusion is named by the convolution inside it, then by its root.
  assert labels['ynn_fusion.38'] == (
      'transpose(jvp(MadryCNN))/Conv_1/conv_general_dilated -> f32[128,14,14,32]'
      ' + jvp(MadryCNN)/reduce_sum -> f32[128,14,2,14,2,32]')


def test_aggregate_adds_durations_per_label_and_step():
  labels = bench_profile.op_labels(_HLO)
  events = [{'ph': 'X', 'name': 'ynn_fusion.84', 'dur': 3000},
            {'ph': 'X', 'name': 'ynn_fusion.84', 'dur': 1000},
            {'ph': 'X', 'name': 'add.3', 'dur': 1000},
            {'ph': 'X', 'name': 'ThunkExecutor::Execute', 'dur': 99000},  # not an HLO op
            {'ph': 'i', 'name': 'add.3'}]
  ops = bench_profile.aggregate(events, labels, num_steps=2)
  assert [o['op'] for o in ops] == [labels['ynn_fusion.84'], labels['add.3']]
  assert ops[0]['ms_per_step'] == pytest.approx(2.0)
  assert ops[0]['calls_per_step'] == pytest.approx(1.0)
  assert ops[1]['ms_per_step'] == pytest.approx(0.5)
  assert sum(o['share'] for o in ops) == pytest.approx(1.0)


def test_profile_of_a_real_step_finds_the_convolutions():
  out = bench_profile.profile_step(num_steps=1, batch_size=8, repeats=2)
  labels = [o['op'] for o in out['ops']]
  assert any('Conv_1/conv_general_dilated' in label for label in labels), labels[:10]
  assert any(label.startswith('transpose(') for label in labels), labels[:10]
  assert out['op_ms_per_step'] > 0
  assert sum(o['share'] for o in out['ops']) == pytest.approx(1.0)


@pytest.mark.parametrize('num_steps', [0, 7])
def test_xla_count_is_the_dense_count_without_same_padding(num_steps):
  """XLA:CPU counts only multiply-adds on real pixels: below the dense count, by < 20 %."""
  step = benchmarks.bench_step(num_steps, batch_size=8, seconds=0.0)
  dense = bench_xla.step_flops(num_steps, 8) / 1e9
  assert step['dense_gflop_per_step'] == pytest.approx(dense)
  assert 0.8 * dense < step['gflop_per_step'] < dense


def test_the_imagenet_benchmarks_time_the_real_pipeline_and_step():
  from tradeoff.bench import imagenet as bench_imagenet  # pylint: disable=g-import-not-at-top
  out = bench_imagenet.pipeline_throughput(num_images=8, size=32, threads=(1, 2),
                                           batch_size=4, seconds=0.05)
  assert [r['threads'] for r in out['pipeline']] == [1, 2]
  assert all(r['train_images_per_s'] > 0 and r['eval_images_per_s'] > 0 and
             r['train_batches'] >= 3 for r in out['pipeline'])
  assert 333 <= min(out['jpeg_mean_width_height']) <= 500 and out['jpeg_mean_bytes'] > 1000
  out.update(device='cpu', versions={'jax': '0'}, xla_flags='', commit='0' * 40)
  assert '| 2 |' in bench_imagenet.format_pipeline(out)
  step = bench_imagenet.resnet_step(depth=18, batch_size=2, pgd_steps=(1,),
                                    dtypes=('bfloat16',), size=32, seconds=0.0)
  assert [(r['name'], r['dtype']) for r in step['steps']] == [('pgd1', 'bfloat16')]
  assert step['steps'][0]['images_per_s'] > 0 and step['steps'][0]['timed_steps'] >= 3
  step.update(device='cpu', versions={'jax': '0'}, xla_flags='', commit='0' * 40)
  assert '| pgd1 | bfloat16 | 2 |' in bench_imagenet.format_resnet(step)


def test_the_loop_benchmark_times_each_way_with_both_convolutions():
  from tradeoff import models  # pylint: disable=g-import-not-at-top
  from tradeoff.bench import loop  # pylint: disable=g-import-not-at-top
  from tradeoff.bench import records  # pylint: disable=g-import-not-at-top
  conv = models.Conv
  out = loop.gradient_loop(batch_size=4, width=0.25, steps=2, repeats=1)
  assert models.Conv is conv   # put back
  assert [r['convolution'] for r in out['rows']] == ['nn.Conv', 'models.Conv']
  assert all(r[way] > 0 for r in out['rows'] for way in loop.WAYS)
  table = records.format_record({**out, 'kind': 'loop'})
  assert '| models.Conv |' in table and 'rolled | unrolled | python' in table
