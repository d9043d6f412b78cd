"""The package's import graph: no cycles, and the layers import one way."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('tradeoff.figures', 'tradeoff.bench', 'tradeoff.attacks', 'tradeoff')


def _graph(module_level_only: bool) -> dict[str, set[str]]:
  """{module: tradeoff modules it imports}."""
  graph = {}
  for root, _, files in os.walk(os.path.join(REPO, 'tradeoff')):
    for f in files:
      if not f.endswith('.py'):
        continue
      path = os.path.join(root, f)
      name = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.').removesuffix('.__init__')
      tree = ast.parse(open(path).read())
      nodes = tree.body if module_level_only else ast.walk(tree)
      deps = set()
      for n in nodes:
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith('tradeoff'):
          for a in n.names:
            deps.add(f'{n.module}.{a.name}' if n.module in PACKAGES else n.module)
        elif isinstance(n, ast.Import):
          deps.update(a.name for a in n.names if a.name.startswith('tradeoff'))
      graph[name] = deps
  return {m: {d for d in deps if d in graph} for m, deps in graph.items()}


def test_module_level_imports_have_no_cycles():
  graph = _graph(module_level_only=True)
  state = {}

  def visit(m, path):
    state[m] = 'open'
    for d in sorted(graph[m]):
      assert state.get(d) != 'open', 'import cycle: ' + ' -> '.join(path + [d])
      if d not in state:
        visit(d, path + [d])
    state[m] = 'done'
  for m in sorted(graph):
    if m not in state:
      visit(m, [m])


def test_benchmarks_and_data_do_not_import_the_layers_above_them():
  graph = _graph(module_level_only=False)   # imports inside functions too
  for m, deps in graph.items():
    if m.startswith('tradeoff.bench'):
      assert not [d for d in deps if d.startswith('tradeoff.figures')], m
    if m in ('tradeoff.data', 'tradeoff.workdir', 'tradeoff.trained'):
      assert 'tradeoff.streaming' not in deps and 'tradeoff.train' not in deps, m
  assert 'tradeoff.losses' not in graph['tradeoff.trained']   # a run opens without its loss
