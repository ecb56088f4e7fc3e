"""`flywheel demo --story`: bad input is a one-line error and exit code 2 before anything starts
(no key, no process, no ROS); the command is listed in `flywheel --help`."""
from flywheel.cli.main import EXIT_USAGE, main


def test_an_out_that_is_not_a_writable_directory_is_a_usage_error(tmp_path, capsys):
    taken = tmp_path / 'a-file'
    taken.write_text('not a directory')
    assert main(['demo', '--story', '--out', str(taken)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith('flywheel demo: --out ') and 'not a writable directory' in err
    assert 'Traceback' not in err and not (tmp_path / 'demo-keys').exists()


def test_an_out_under_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / 'a-file').write_text('')
    assert main(['demo', '--story', '--out', str(tmp_path / 'a-file' / 'story')]) == EXIT_USAGE
    assert 'not a writable directory' in capsys.readouterr().err


def test_an_out_holding_something_else_is_a_usage_error_and_left_alone(tmp_path, capsys):
    (tmp_path / 'logs').mkdir()
    (tmp_path / 'logs' / 'mine.txt').write_text('keep me')
    assert main(['demo', '--story', '--out', str(tmp_path)]) == EXIT_USAGE
    assert 'not empty and no earlier story' in capsys.readouterr().err
    assert (tmp_path / 'logs' / 'mine.txt').read_text() == 'keep me'


def test_a_watch_time_out_of_range_is_a_usage_error(tmp_path, capsys):
    for bad in ('-1', 'nan', '601'):
        assert main(['demo', '--story', '--duration', bad, '--out', str(tmp_path)]) == EXIT_USAGE
        assert 'seconds watched after full' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_story(capsys):
    assert main(['--help']) == 0
    assert 'demo --story' in capsys.readouterr().out
