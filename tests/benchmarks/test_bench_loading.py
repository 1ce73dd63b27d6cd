

def test_an_unreadable_image_under_root_is_one_line(load_benchmark, tmp_path, capsys):
    (tmp_path / "a.png").write_text("not an image")
    assert load_benchmark("bench_loading").main(["--root", str(tmp_path)]) == 2
    assert "error: Cannot read image file" in capsys.readouterr().err
